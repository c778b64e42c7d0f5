//! Matching a task to the first `[[routes]]` entry that accepts it.
use tern_agent_api::admin;
use tern_agent_api::category::TaskCategory;

use super::config::RouteConfig;
use super::limits::RouteLimits;

/// Where a route sends tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This gateway's agents, by task category.
    Local,
    /// One named agent of this gateway.
    Agent(String),
    /// A group of remote endpoints.
    Group(String),
}

impl Target {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "local" => Ok(Self::Local),
            Some(("agent", name)) if !name.is_empty() => Ok(Self::Agent(name.to_owned())),
            Some(("group", name)) if !name.is_empty() => Ok(Self::Group(name.to_owned())),
            _ => Err(format!("target {text:?} is not `local`, `agent:<name>` or `group:<name>`")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Agent(n) => write!(f, "agent:{n}"),
            Self::Group(n) => write!(f, "group:{n}"),
        }
    }
}

/// The parts of a request that routes match on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub category: &'a TaskCategory,
    pub project: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub labels: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The whole task execution id, when given.
    pub execution: Option<&'a tern_agent_api::core::TaskExecutionIdentifier>,
}

impl<'a> Subject<'a> {
    pub fn new(category: &'a TaskCategory, meta: Option<&'a admin::TaskExecutionMetadata>) -> Self {
        let exec = meta
            .and_then(|m| m.task_execution_id.as_ref())
            .and_then(|t| t.node_execution_id.as_ref())
            .and_then(|n| n.execution_id.as_ref());
        let nonempty = |s: &'a str| (!s.is_empty()).then_some(s);
        Self {
            category,
            project: exec.and_then(|e| nonempty(e.project.as_str())),
            domain: exec.and_then(|e| nonempty(e.domain.as_str())),
            labels: meta.map(|m| &m.labels),
            execution: meta.and_then(|m| m.task_execution_id.as_ref()),
        }
    }

    /// `project/domain/execution/node/attempt`, for logs (empty without an id).
    pub fn execution_text(&self) -> String {
        let Some(id) = self.execution else { return String::new() };
        let node = id.node_execution_id.as_ref();
        let exec = node.and_then(|n| n.execution_id.as_ref());
        format!(
            "{}/{}/{}/{}/{}",
            exec.map(|e| e.project.as_str()).unwrap_or_default(),
            exec.map(|e| e.domain.as_str()).unwrap_or_default(),
            exec.map(|e| e.name.as_str()).unwrap_or_default(),
            node.map(|n| n.node_id.as_str()).unwrap_or_default(),
            id.retry_attempt
        )
    }
}

/// A compiled `[[routes]]` entry.
pub struct Route {
    pub name: String,
    pub config: RouteConfig,
    pub target: Target,
    pub limits: RouteLimits,
}

impl Route {
    /// The implicit last route: everything else goes to this gateway's agents.
    pub fn fallback() -> Self {
        let config = RouteConfig {
            name: Some("fallback".into()),
            task_type: None,
            version: None,
            project: None,
            domain: None,
            labels: Default::default(),
            target: "local".into(),
            deadline: None,
            max_concurrency: None,
            on_full: Default::default(),
            queue_timeout: std::time::Duration::from_secs(10),
            rate_limit: None,
        };
        let limits = RouteLimits::new("fallback", &config);
        Self { name: "fallback".into(), config, target: Target::Local, limits }
    }

    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let c = &self.config;
        let field = |want: &Option<super::config::OneOrMany>, have: Option<&str>| match want {
            None => true,
            Some(w) => have.is_some_and(|h| w.contains(h)),
        };
        field(&c.task_type, Some(s.category.name.as_str()))
            && c.version.is_none_or(|v| v == s.category.version)
            && field(&c.project, s.project)
            && field(&c.domain, s.domain)
            && c.labels.iter().all(|(k, v)| s.labels.and_then(|l| l.get(k)) == Some(v))
    }

    /// Whether this route can apply to `category` for some request (for `ListAgents`).
    pub fn may_match(&self, category: &TaskCategory) -> bool {
        let c = &self.config;
        c.task_type.as_ref().is_none_or(|t| t.contains(&category.name)) && c.version.is_none_or(|v| v == category.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Route {
        let config: RouteConfig = toml::from_str(text).unwrap();
        let target = Target::parse(&config.target).unwrap();
        let limits = RouteLimits::new("t", &config);
        Route { name: "t".into(), config, target, limits }
    }

    fn meta(project: &str, domain: &str, labels: &[(&str, &str)]) -> admin::TaskExecutionMetadata {
        use tern_agent_api::core;
        admin::TaskExecutionMetadata {
            task_execution_id: Some(core::TaskExecutionIdentifier {
                node_execution_id: Some(core::NodeExecutionIdentifier {
                    node_id: "n".into(),
                    execution_id: Some(core::WorkflowExecutionIdentifier {
                        project: project.into(),
                        domain: domain.into(),
                        name: "e".into(),
                        org: String::new(),
                    }),
                }),
                ..Default::default()
            }),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn matches_every_given_field() {
        let r = route("task_type = \"spark\"\nproject = [\"ml\", \"ops\"]\ndomain = \"production\"\nlabels = { team = \"a\" }\ntarget = \"group:eu\"\n");
        let spark = TaskCategory::new("spark", 0);
        let m = meta("ml", "production", &[("team", "a"), ("x", "y")]);
        assert!(r.matches(&Subject::new(&spark, Some(&m))));
        for other in [meta("fin", "production", &[("team", "a")]), meta("ml", "development", &[("team", "a")]), meta("ml", "production", &[("team", "b")]), meta("ml", "production", &[])] {
            assert!(!r.matches(&Subject::new(&spark, Some(&other))), "{other:?}");
        }
        assert!(!r.matches(&Subject::new(&TaskCategory::new("ray", 0), Some(&m))));
        assert!(!r.matches(&Subject::new(&spark, None)), "a route naming a project needs one");
        let any = route("target = \"local\"\n");
        assert!(any.matches(&Subject::new(&spark, None)));
        let v1 = route("task_type = \"spark\"\nversion = 1\ntarget = \"local\"\n");
        assert!(!v1.matches(&Subject::new(&spark, None)) && v1.matches(&Subject::new(&TaskCategory::new("spark", 1), None)));
    }

    #[test]
    fn targets_parse_or_are_refused_by_name() {
        assert_eq!(Target::parse("local"), Ok(Target::Local));
        assert_eq!(Target::parse("group:eu"), Ok(Target::Group("eu".into())));
        assert_eq!(Target::parse("agent:duckdb"), Ok(Target::Agent("duckdb".into())));
        for bad in ["", "remote", "group:", "grp:eu"] {
            assert!(Target::parse(bad).unwrap_err().contains("agent:<name>"), "{bad}");
        }
    }
}
