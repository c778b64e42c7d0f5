//! Loading plugin libraries with libloading, and checking their declaration before any of
//! it is used: the symbol must exist, its first field must be our ABI version, and every
//! text in it must be valid.
use std::path::{Path, PathBuf};

use libloading::Library;
use tern_agent_api::factory::AdmissionScope;
use tern_agent_api::plugin::abi::{
    AgentDeclaration, CallFn, DropInstanceFn, InitFn, PluginDeclaration, PrepareFn, StrRef, ABI_VERSION,
    ADMISSION_CALL, ADMISSION_JOB, DECLARATION_SYMBOL,
};

use super::error::PluginError;

/// At most this many agents in one library (a larger count means a corrupt declaration).
const MAX_AGENTS: u32 = 256;

/// The functions of one agent, checked non-null. They point into a library that is never
/// unloaded.
#[derive(Debug, Clone, Copy)]
pub struct AgentFns {
    pub prepare: PrepareFn,
    pub init: InitFn,
    pub call: CallFn,
    pub drop_instance: DropInstanceFn,
}

/// One agent of a loaded library.
#[derive(Debug, Clone)]
pub struct PluginAgentDecl {
    pub name: String,
    pub description: String,
    pub scope: AdmissionScope,
    pub fns: AgentFns,
    pub library: PathBuf,
    /// The `tern-agent-api` version the library was built with.
    pub api_version: String,
}

/// A library that passed every check.
#[derive(Debug)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub api_version: String,
    pub agents: Vec<PluginAgentDecl>,
}

/// Refuses a directory or library that every user may write (after following symlinks):
/// whoever can write it can make the gateway run their code.
pub fn check_not_world_writable(path: &Path) -> Result<(), PluginError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| PluginError::Load { path: path.to_owned(), message: e.to_string() })?
            .permissions()
            .mode();
        if mode & 0o002 != 0 {
            return Err(PluginError::WorldWritable { path: path.to_owned(), mode: mode & 0o7777 });
        }
    }
    Ok(())
}

/// The libraries in `dir` (`*.so`, or the platform's suffix), sorted by name. A directory
/// every user may write is refused.
pub fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    if dir.is_dir() {
        check_not_world_writable(dir)?;
    }
    let entries = std::fs::read_dir(dir).map_err(|source| PluginError::Dir { dir: dir.to_owned(), source })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| PluginError::Dir { dir: dir.to_owned(), source })?;
        let path = entry.path();
        let is_library = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(std::env::consts::DLL_SUFFIX));
        if is_library && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Loads one library and checks its declaration.
pub fn load(path: &Path) -> Result<LoadedPlugin, PluginError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    check_not_world_writable(&path)?;
    // SAFETY: loading a library runs its initialisers: the operator vouches for the
    // libraries in the configured plugin directory (docs/plugins.md: a plugin is trusted
    // code running in the gateway's process).
    let library = unsafe { Library::new(&path) }
        .map_err(|e| PluginError::Load { path: path.clone(), message: e.to_string() })?;
    let declaration = {
        // SAFETY: the symbol's type is fixed by the ABI for every version:
        // `extern "C" fn() -> *const PluginDeclaration`.
        let symbol = unsafe {
            library.get::<unsafe extern "C" fn() -> *const PluginDeclaration>(DECLARATION_SYMBOL.as_bytes())
        }
        .map_err(|e| PluginError::MissingSymbol { path: path.clone(), message: e.to_string() })?;
        // SAFETY: the declaration function takes nothing and returns a pointer to static data.
        unsafe { symbol() }
    };
    if declaration.is_null() {
        return Err(PluginError::Malformed { path, message: "tern_plugin_declaration returned a null pointer".into() });
    }
    // SAFETY: every ABI version starts its declaration with a `u32` version; only that is
    // read before the version is known.
    let found = unsafe { std::ptr::read(declaration as *const u32) };
    if found != ABI_VERSION {
        return Err(PluginError::AbiVersion { path, found });
    }
    // SAFETY: the version matched, so the pointer is a v1 `PluginDeclaration` in static
    // memory of the library. It is `'static` once the library is leaked below; if the
    // check fails, nothing borrowed from it escapes (errors hold copies) and it is unloaded.
    let declaration: &'static PluginDeclaration = unsafe { &*declaration };
    let loaded = check(path, declaration)?;
    // A library that passed stays loaded for the life of the process: its runtime threads
    // run its code, and every agent holds pointers into it.
    std::mem::forget(library);
    Ok(loaded)
}

fn text(path: &Path, what: &str, s: StrRef) -> Result<String, PluginError> {
    // SAFETY: texts of a v1 declaration point to static memory of the (never unloaded)
    // library; `as_str` checks null and UTF-8.
    unsafe { s.as_str() }
        .map(str::to_owned)
        .ok_or_else(|| PluginError::Malformed { path: path.to_owned(), message: format!("{what} is not UTF-8 text") })
}

fn check(path: PathBuf, declaration: &'static PluginDeclaration) -> Result<LoadedPlugin, PluginError> {
    let malformed = |message: String| PluginError::Malformed { path: path.clone(), message };
    let api_version = text(&path, "the tern-agent-api version", declaration.api_version)?;
    if declaration.agent_count == 0 || declaration.agent_count > MAX_AGENTS {
        return Err(malformed(format!("it declares {} agents (expected 1 to {MAX_AGENTS})", declaration.agent_count)));
    }
    if declaration.agents.is_null() {
        return Err(malformed("its agent list is a null pointer".into()));
    }
    // SAFETY: a v1 declaration's `agents` points to `agent_count` declarations in static
    // memory (checked non-null and bounded above).
    let decls: &'static [AgentDeclaration] =
        unsafe { std::slice::from_raw_parts(declaration.agents, declaration.agent_count as usize) };
    let mut agents: Vec<PluginAgentDecl> = Vec::new();
    for decl in decls {
        let name = text(&path, "an agent name", decl.name)?;
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(malformed(format!("agent name {name:?} is not snake_case (it names the section [agents.<name>])")));
        }
        if agents.iter().any(|a| a.name == name) {
            return Err(malformed(format!("agent {name:?} is declared twice")));
        }
        let scope = match decl.admission {
            ADMISSION_CALL => AdmissionScope::Call,
            ADMISSION_JOB => AdmissionScope::Job,
            other => return Err(malformed(format!("agent {name:?} has unknown admission scope {other}"))),
        };
        let null = |f: &str| malformed(format!("agent {name:?} has no `{f}` function (a null pointer)"));
        let fns = AgentFns {
            prepare: decl.prepare.ok_or_else(|| null("prepare"))?,
            init: decl.init.ok_or_else(|| null("init"))?,
            call: decl.call.ok_or_else(|| null("call"))?,
            drop_instance: decl.drop_instance.ok_or_else(|| null("drop_instance"))?,
        };
        agents.push(PluginAgentDecl {
            description: text(&path, "an agent description", decl.description)?,
            name,
            scope,
            fns,
            library: path.clone(),
            api_version: api_version.clone(),
        });
    }
    Ok(LoadedPlugin { path, api_version, agents })
}
