//! Agent plugins: the example plugin (examples/plugin-agent) is built, loaded from a
//! `[plugins] dir`, and called through the same in-process client `tern run` and `tern
//! serve` use; libraries that are not valid plugins are refused with their file named.
//!
//! The example is built with cargo (a no-op when `scripts/test.sh` already built it), or
//! taken from `TERN_PLUGIN_EXAMPLE` when that names the built library.
#![cfg(unix)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use tern_agent_api::client::AgentClient;
use tern_agent_api::prelude::*;
use tern_gateway::config::show;
use tern_gateway::registry::{self, Decision};
use tern_gateway::{GatewayConfig, Mode};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the gateway crate is inside the repository").to_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo().join(dir), // absolute stays absolute
        None => repo().join("target"),
    }
}

/// The example plugin's library, built once per test process.
fn example_plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        if let Some(path) = std::env::var_os("TERN_PLUGIN_EXAMPLE").map(PathBuf::from).filter(|p| p.is_file()) {
            return path;
        }
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let manifest = repo().join("examples/plugin-agent/Cargo.toml");
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir())
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building the example plugin failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lib = target_dir().join("debug").join(format!(
            "{}tern_plugin_example{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ));
        assert!(lib.is_file(), "cargo built the example plugin but {} is missing", lib.display());
        lib
    })
}

/// A library built from tests/fixtures/fake_plugin.rs with `--cfg variant`.
fn fake_plugin(dir: &Path, variant: Option<&str>) -> PathBuf {
    let name = variant.unwrap_or("abi999");
    let out = dir.join(format!("{}fake_{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args(["--edition", "2021", "--crate-type", "cdylib", "--crate-name", &format!("fake_{name}"), "-o"])
        .arg(&out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_plugin.rs"));
    if let Some(v) = variant {
        cmd.args(["--cfg", v]);
    }
    let result = cmd.output().expect("rustc runs");
    assert!(result.status.success(), "rustc failed:\n{}", String::from_utf8_lossy(&result.stderr));
    out
}

/// A plugin directory holding the example (as a symlink, so every test shares one loaded copy).
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(example_plugin(), dir.path().join("libtern_plugin_example.so")).unwrap();
    dir
}

struct Gateway {
    _plugins: tempfile::TempDir,
    data: tempfile::TempDir,
    config: GatewayConfig,
}

fn gateway_with(plugins: tempfile::TempDir, text: &str, env: &[(&str, &str)]) -> Gateway {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[plugins]\ndir = {:?}\n[data_store]\nroot = {:?}\n{text}",
        plugins.path().display().to_string(),
        data.path().display().to_string()
    );
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let config = GatewayConfig::parse_with_env(&text, Some(Path::new("tern.toml")), Arc::new(env)).unwrap();
    Gateway { _plugins: plugins, data, config }
}

fn gateway(text: &str) -> Gateway {
    gateway_with(plugin_dir(), text, &[])
}

fn string(s: &str) -> core::Literal {
    use tern_agent_api::core::{literal, primitive, scalar};
    core::Literal {
        value: Some(literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(scalar::Value::Primitive(core::Primitive { value: Some(primitive::Value::StringValue(s.into())) })),
        }))),
        ..Default::default()
    }
}

fn integer(i: i64) -> core::Literal {
    use tern_agent_api::core::{literal, primitive, scalar};
    core::Literal {
        value: Some(literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(scalar::Value::Primitive(core::Primitive { value: Some(primitive::Value::Integer(i)) })),
        }))),
        ..Default::default()
    }
}

fn string_of(l: &core::Literal) -> Option<&str> {
    use tern_agent_api::core::{literal, primitive, scalar};
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(core::Primitive { value: Some(primitive::Value::StringValue(v)) })) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

fn integer_of(l: &core::Literal) -> Option<i64> {
    use tern_agent_api::core::{literal, primitive, scalar};
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(core::Primitive { value: Some(primitive::Value::Integer(v)) })) => Some(*v),
            _ => None,
        },
        _ => None,
    }
}

fn template(task_type: &str) -> core::TaskTemplate {
    core::TaskTemplate { r#type: task_type.into(), ..Default::default() }
}

fn inputs(name: &str, value: &str) -> core::LiteralMap {
    core::LiteralMap { literals: [(name.to_owned(), string(value))].into() }
}

fn create(name: &str, prefix: &str) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        template: Some(template("greet").into()),
        inputs: Some(inputs("name", name)),
        output_prefix: prefix.into(),
        ..Default::default()
    }
}

fn get(meta: &[u8]) -> admin::GetTaskRequest {
    admin::GetTaskRequest {
        task_category: Some(admin::TaskCategory { name: "greet".into(), version: 0 }),
        resource_meta: meta.to_vec(),
        ..Default::default()
    }
}

/// `wordcount`'s template, declaring `text: string -> words: integer`.
fn wordcount_template() -> core::TaskTemplate {
    let var = |simple: core::SimpleType| core::Variable {
        r#type: Some(core::LiteralType { r#type: Some(core::literal_type::Type::Simple(simple as i32)), ..Default::default() }),
        ..Default::default()
    };
    let map = |name: &str, simple| core::VariableMap { variables: [(name.to_owned(), var(simple))].into() };
    core::TaskTemplate {
        interface: Some(core::TypedInterface {
            inputs: Some(map("text", core::SimpleType::String)),
            outputs: Some(map("words", core::SimpleType::Integer)),
        }),
        ..template("wordcount")
    }
}

async fn count_words(client: &InProcessClient, text: &str) -> Result<admin::Resource, AgentError> {
    let header = admin::CreateRequestHeader { template: Some(wordcount_template().into()), ..Default::default() };
    client.execute_task_sync(header, inputs("text", text)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plugin_serves_async_and_sync_tasks_through_the_gateways_services() {
    let g = gateway("[agents.greeter]\ngreeting = \"Hi\"\n[agents.wordcount]\nmin_length = 4\n");
    let (client, built) = tern_gateway::in_process_client(&g.config, Mode::Serve).unwrap();

    let served: Vec<&str> = built.served.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(served, ["greeter", "wordcount"], "a config listing agents serves exactly those");
    let greeter = &built.served[0];
    // the plugin agent's state table crossed the boundary
    let greet = client.registry().lookup(&TaskCategory::new("greet", 0)).unwrap().clone();
    let states = greet.backend_states().expect("the greeter declares its states");
    assert_eq!(states.states().map(|s| s.name).collect::<Vec<_>>(), ["WRITTEN", "CANCELLED", "GONE"]);
    assert_eq!(states.classify("GONE").error.unwrap().code, "EXAMPLE-002");
    assert!(!greeter.is_sync && greeter.source.contains("libtern_plugin_example") && greeter.source.contains("tern-agent-api 0.1.0"), "{greeter:?}");
    assert!(built.served[1].is_sync);
    let listed = client.list_agents().await.unwrap();
    assert_eq!(listed.iter().map(|a| (a.name.as_str(), a.is_sync)).collect::<Vec<_>>(), [("greeter", false), ("wordcount", true)]);

    // async: create writes through the gateway's data store, get reads it back
    let meta = client.create_task(create("Ada", "runs/1")).await.unwrap();
    assert_eq!(std::fs::read_to_string(g.data.path().join("runs/1/greeting.txt")).unwrap(), "Hi, Ada!");
    let resource = client.get_task(get(&meta)).await.unwrap();
    assert_eq!(resource.phase, core::task_execution::Phase::Succeeded as i32, "{resource:?}");
    assert_eq!(string_of(&resource.outputs.unwrap().literals["greeting"]), Some("Hi, Ada!"));
    // a failure status crosses the boundary with its error
    std::fs::remove_file(g.data.path().join("runs/1/greeting.txt")).unwrap();
    let resource = client.get_task(get(&meta)).await.unwrap();
    assert_eq!(resource.phase, core::task_execution::Phase::Failed as i32, "{resource:?}");
    assert_eq!(resource.agent_error.unwrap().code, "EXAMPLE-002");
    // delete leaves a marker through `write`; get sees it through `exists`
    let meta = client.create_task(create("Bo", "runs/2")).await.unwrap();
    let delete = admin::DeleteTaskRequest {
        task_category: Some(admin::TaskCategory { name: "greet".into(), version: 0 }),
        resource_meta: meta.clone(),
        ..Default::default()
    };
    client.delete_task(delete).await.unwrap();
    let resource = client.get_task(get(&meta)).await.unwrap();
    assert_eq!(resource.phase, core::task_execution::Phase::Aborted as i32, "{resource:?}");

    // sync
    let resource = count_words(&client, "a tern flies over the sea").await.unwrap();
    assert_eq!(resource.phase, core::task_execution::Phase::Succeeded as i32, "{resource:?}");
    assert_eq!(integer_of(&resource.outputs.unwrap().literals["words"]), Some(3), "words of at least 4 letters (of 6)");

    // the plugin's own errors keep their code and class across the boundary
    let e = client.create_task(admin::CreateTaskRequest { inputs: None, ..create("x", "runs/3") }).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.grpc_code()), ("EXAMPLE-001", tonic::Code::InvalidArgument), "{e}");
    // metrics and logs are not offered: the default capability error comes back intact
    let e = client
        .get_task_metrics(admin::GetTaskMetricsRequest {
            task_category: Some(admin::TaskCategory { name: "greet".into(), version: 0 }),
            resource_meta: meta,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e, AgentError::unimplemented("GetTaskMetrics for greeter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_plugin_is_an_error_and_the_gateway_keeps_serving() {
    let g = gateway("");
    let (client, _) = tern_gateway::in_process_client(&g.config, Mode::Embedded).unwrap();
    for _ in 0..2 {
        let e = client.create_task(create("panic", "runs/p")).await.unwrap_err();
        assert_eq!(e.code, codes::INTERNAL, "{e}");
        assert!(e.message.contains("plugin greeter panicked during create: greeter was asked to panic"), "{e}");
        let e = count_words(&client, "panic").await.unwrap_err();
        assert!(e.message.contains("plugin wordcount panicked during execute: wordcount was asked to panic"), "{e}");
        // and the next calls work
        let meta = client.create_task(create("Cy", "runs/after-panic")).await.unwrap();
        let resource = client.get_task(get(&meta)).await.unwrap();
        assert_eq!(string_of(&resource.outputs.unwrap().literals["greeting"]), Some("Hello, Cy!"));
        assert_eq!(count_words(&client, "still here").await.unwrap().phase, core::task_execution::Phase::Succeeded as i32);
    }

    // a panic while the gateway builds the agent stops the start, naming it
    let g = gateway("[agents.greeter]\npanic_on_build = true\n");
    let msg = tern_gateway::in_process_client(&g.config, Mode::Serve).err().expect("a panicking build is refused").to_string();
    assert!(msg.contains("TERN-G024") && msg.contains("plugin greeter panicked during init"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_sections_are_checked_by_the_plugins_own_type_and_shown() {
    let g = gateway("[agents.greeter]\ngretting = \"Hi\"\n");
    let msg = tern_gateway::in_process_client(&g.config, Mode::Serve).err().expect("unknown key").to_string();
    assert!(msg.contains("TERN-G002") && msg.contains("[agents.greeter]") && msg.contains("gretting") && msg.contains("tern.toml"), "{msg}");

    let g = gateway("[agents.greeter]\nshout = \"loud\"\n");
    let msg = tern_gateway::in_process_client(&g.config, Mode::Serve).err().expect("wrong type").to_string();
    assert!(msg.contains("[agents.greeter]") && msg.contains("loud"), "{msg}");

    // an error the plugin's build returns is named too
    let g = gateway("[agents.greeter]\ngreeting = \" \"\n");
    let msg = tern_gateway::in_process_client(&g.config, Mode::Serve).err().expect("empty greeting").to_string();
    assert!(msg.contains("TERN-G004") && msg.contains("greeting must not be empty"), "{msg}");

    // the effective settings (with the plugin's defaults) and the common keys are shown
    let g = gateway("[agents.greeter]\nshout = true\nmax_concurrency = 2\n");
    let agents = tern_gateway::plugins::agent_entries(&g.config).unwrap();
    let host = tern_agent_api::factory::HostResources::detect();
    let planned = registry::plan(&g.config, Mode::Serve, &host, &agents.entries).unwrap();
    let table = show::effective(&g.config, &planned).unwrap();
    let greeter = table["agents"]["greeter"].as_table().unwrap();
    assert_eq!(greeter["greeting"].as_str(), Some("Hello"));
    assert_eq!(greeter["shout"].as_bool(), Some(true));
    assert_eq!(greeter["max_concurrency"].as_integer(), Some(2));
    assert!(!greeter.contains_key("api_token"), "unset keys are absent: {greeter:?}");
    assert_eq!(table["plugins"]["dir"].as_str(), g.config.plugins.dir.as_ref().and_then(|d| d.to_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_touches_local_files_must_be_enabled_explicitly() {
    let g = gateway("[agents.wordcount]\nallow_local_files = true\n");
    let msg = tern_gateway::in_process_client(&g.config, Mode::Serve).err().expect("opt-in required").to_string();
    assert!(msg.contains("TERN-G009") && msg.contains("wordcount") && msg.contains("enabled = true"), "{msg}");

    // not listed: left off with the reason
    let g = gateway("[agents.greeter]\n");
    let agents = tern_gateway::plugins::agent_entries(&g.config).unwrap();
    let host = tern_agent_api::factory::HostResources::detect();
    let planned = registry::plan(&g.config, Mode::Serve, &host, &agents.entries).unwrap();
    let wordcount = planned.iter().find(|p| p.entry.name == "wordcount").unwrap();
    assert!(matches!(&wordcount.decision, Decision::Off(why) if why.contains("not listed")), "{:?}", wordcount.decision);

    let g = gateway("[agents.wordcount]\nallow_local_files = true\nenabled = true\n");
    let (client, built) = tern_gateway::in_process_client(&g.config, Mode::Serve).unwrap();
    let wordcount = built.served.iter().find(|a| a.name == "wordcount").unwrap();
    assert_eq!(wordcount.exposure, Exposure::LocalFiles);
    let file = g.data.path().join("words.txt");
    std::fs::write(&file, "one two three").unwrap();
    let resource = count_words(&client, &format!("file:{}", file.display())).await.unwrap();
    assert_eq!(integer_of(&resource.outputs.unwrap().literals["words"]), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_the_data_store_are_the_gateways() {
    // the secret reference is resolved by the gateway's provider, against its environment
    let g = gateway_with(plugin_dir(), "[agents.greeter]\napi_token = \"env:GREETER_TOKEN\"\n", &[]);
    let (client, _) = tern_gateway::in_process_client(&g.config, Mode::Serve).unwrap();
    let e = client.create_task(create("Di", "runs/s")).await.unwrap_err();
    assert_eq!(e.code, codes::SECRET_MISSING, "{e}");
    assert!(e.message.contains("GREETER_TOKEN"), "{e}");
    let g = gateway_with(plugin_dir(), "[agents.greeter]\napi_token = \"env:GREETER_TOKEN\"\n", &[("GREETER_TOKEN", "t0ken")]);
    let (client, _) = tern_gateway::in_process_client(&g.config, Mode::Serve).unwrap();
    client.create_task(create("Di", "runs/s")).await.unwrap();

    // `tern serve` confines the data store: a plugin cannot write outside it either
    let outside = tempfile::tempdir().unwrap();
    let prefix = outside.path().join("escape").display().to_string();
    let e = client.create_task(create("Ed", &prefix)).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.grpc_code()), (codes::DATA_OUTSIDE_ROOTS, tonic::Code::PermissionDenied), "{e}");
    assert!(!outside.path().join("escape").exists(), "nothing was written outside the data store");
}

fn refused(dir: tempfile::TempDir) -> String {
    let g = gateway_with(dir, "", &[]);
    match tern_gateway::in_process_client(&g.config, Mode::Serve) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the gateway started with a broken plugin"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libraries_that_are_not_valid_plugins_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_plugin(dir.path(), None);
    let msg = refused(dir);
    assert!(msg.contains("TERN-G023") && msg.contains(&lib.display().to_string()), "{msg}");
    assert!(msg.contains("ABI version 999") && msg.contains("version 1"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let lib = fake_plugin(dir.path(), Some("missing_symbol"));
    let msg = refused(dir);
    assert!(msg.contains("TERN-G022") && msg.contains(&lib.display().to_string()) && msg.contains("tern_plugin_declaration"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let lib = fake_plugin(dir.path(), Some("no_agents"));
    let msg = refused(dir);
    assert!(msg.contains("TERN-G023") && msg.contains(&lib.display().to_string()) && msg.contains("0 agents"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let lib = fake_plugin(dir.path(), Some("null_function"));
    let msg = refused(dir);
    assert!(msg.contains("TERN-G023") && msg.contains(&lib.display().to_string()), "{msg}");
    assert!(msg.contains("\"broken\" has no `prepare` function"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libgarbage.so");
    std::fs::write(&lib, b"not an ELF file").unwrap();
    let msg = refused(dir);
    assert!(msg.contains("TERN-G021") && msg.contains(&lib.display().to_string()), "{msg}");

    // the same agent names twice
    let dir = plugin_dir();
    std::os::unix::fs::symlink(example_plugin(), dir.path().join("libz_copy.so")).unwrap();
    let msg = refused(dir);
    assert!(msg.contains("TERN-G025") && msg.contains("greeter") && msg.contains("libz_copy.so"), "{msg}");

    // a directory that cannot be read
    let g = gateway_with(tempfile::tempdir().unwrap(), "", &[]);
    let mut config = g.config.clone();
    config.plugins.dir = Some(g.data.path().join("no-such-dir"));
    let msg = tern_gateway::in_process_client(&config, Mode::Serve).err().expect("missing dir").to_string();
    assert!(msg.contains("TERN-G020") && msg.contains("no-such-dir"), "{msg}");

    // a directory or a library every user may write is refused: anyone could plant code
    use std::os::unix::fs::PermissionsExt;
    let dir = plugin_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let shown = dir.path().display().to_string();
    let msg = refused(dir);
    assert!(msg.contains("TERN-G027") && msg.contains(&shown) && msg.contains("777"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_plugin(dir.path(), None);
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o757)).unwrap();
    let msg = refused(dir);
    assert!(msg.contains("TERN-G027") && msg.contains(&lib.display().to_string()), "{msg}");

    // files that are not libraries are not looked at
    let dir = plugin_dir();
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();
    let g = gateway_with(dir, "", &[]);
    assert!(tern_gateway::in_process_client(&g.config, Mode::Serve).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_error_skip_broken_libraries_are_left_out_and_the_rest_served() {
    let dir = plugin_dir();
    let bad = fake_plugin(dir.path(), None);
    let text = format!(
        "[plugins]\ndir = {:?}\non_error = \"skip\"\n",
        dir.path().display().to_string()
    );
    let mut config = GatewayConfig::parse(&text, Path::new("tern.toml")).unwrap();
    let data = tempfile::tempdir().unwrap();
    config.data_store.root = data.path().to_owned();
    let (client, built) = tern_gateway::in_process_client(&config, Mode::Serve).unwrap();
    let served: Vec<&str> = built.served.iter().map(|a| a.name.as_str()).collect();
    assert!(served.contains(&"greeter") && served.contains(&"wordcount") && served.contains(&"echo"), "{served:?}");
    let (file, why) = built.not_served.iter().find(|(f, _)| f.contains("fake_abi999")).expect("the bad library is reported");
    assert_eq!(file, &bad.display().to_string());
    assert!(why.contains("TERN-G023"), "{why}");
    assert_eq!(count_words(&client, "served anyway").await.unwrap().phase, core::task_execution::Phase::Succeeded as i32);
}

/// The agent conformance kit against the plugin's agents over real gRPC, served exactly as
/// `tern serve` serves them (router, confined store), like the built-in agents' remote case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_agents_pass_the_conformance_kit_over_grpc() {
    use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
    use tern_agent_api::testkit::{self, Case};

    let plugins = plugin_dir();
    let store = tempfile::tempdir().unwrap();
    let text = format!("[plugins]\ndir = {:?}\n[agents.greeter]\n[agents.wordcount]\n", plugins.path().display().to_string());
    let mut config = GatewayConfig::parse_with_env(&text, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.path().to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client: Arc<dyn AgentClient> =
        Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = |task_type: &str| gateway.built.registry.lookup(&TaskCategory::new(task_type, 0)).unwrap().clone();
    let string_type = core::LiteralType { r#type: Some(core::literal_type::Type::Simple(core::SimpleType::String as i32)), ..Default::default() };
    let greet = core::TaskTemplate {
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap {
                variables: [("greeting".to_owned(), core::Variable { r#type: Some(string_type), ..Default::default() })].into(),
            }),
        }),
        ..template("greet")
    };
    let case = Case::new(greet.clone(), inputs("name", "Ada"))
        .expect_outputs(core::LiteralMap { literals: [("greeting".to_owned(), string("Hello, Ada!"))].into() })
        .failing(greet, core::LiteralMap::default())
        .agent(agent("greet"));
    testkit::run(client.clone(), case).await.assert_passes();

    let case = Case::new(wordcount_template(), inputs("text", "one two three"))
        .expect_outputs(core::LiteralMap { literals: [("words".to_owned(), integer(3))].into() })
        .failing(wordcount_template(), core::LiteralMap::default())
        .agent(agent("wordcount"))
        .no_backend_states("words are counted in the call");
    testkit::run(client, case).await.assert_passes();
    server.shutdown().await.unwrap();
}
