//! Per-route limits on creates: a concurrency limit and token-bucket quotas per project,
//! per project and domain, or per route. Refusals are `RESOURCE_EXHAUSTED` with a retry
//! hint (when the next token arrives).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tern_agent_api::admission::{Admission, Slot};
use tern_agent_api::prelude::AgentError;

use super::config::{RateLimit, RatePer, RouteConfig};
use super::matcher::Subject;

/// Buckets kept before idle (full) ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    limit: RateLimit,
    burst: f64,
    state: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn key(&self, s: &Subject<'_>) -> String {
        match self.limit.per {
            RatePer::Route => String::new(),
            RatePer::Project => s.project.unwrap_or_default().to_owned(),
            RatePer::ProjectDomain => format!("{}/{}", s.project.unwrap_or_default(), s.domain.unwrap_or_default()),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self, key: String, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rps = self.limit.rps;
        let burst = self.burst;
        if state.len() >= MAX_BUCKETS && !state.contains_key(&key) {
            state.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rps < burst);
        }
        let bucket = state.entry(key).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rps).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - bucket.tokens) / rps).max(0.001)))
        }
    }
}

/// The limits of one route.
pub struct RouteLimits {
    name: String,
    admission: Admission,
    buckets: Option<Buckets>,
}

impl RouteLimits {
    pub fn new(name: &str, config: &RouteConfig) -> Self {
        let admission = match config.max_concurrency {
            Some(n) => Admission::new(format!("route {name}"), n, config.on_full, config.queue_timeout),
            None => Admission::unlimited(),
        };
        let buckets = config.rate_limit.as_ref().map(|l| Buckets {
            burst: l.burst.map(f64::from).unwrap_or_else(|| l.rps.ceil()).max(1.0),
            limit: l.clone(),
            state: Mutex::new(HashMap::new()),
        });
        Self { name: name.to_owned(), admission, buckets }
    }

    /// Checks the quota, then takes a concurrency slot for the create.
    pub async fn admit(&self, s: &Subject<'_>) -> Result<Slot, AgentError> {
        if let Some(b) = &self.buckets {
            let key = b.key(s);
            if let Err(wait) = b.take(key.clone(), Instant::now()) {
                let whose = match b.limit.per {
                    RatePer::Route => "this route".to_owned(),
                    RatePer::Project => format!("project {key:?}"),
                    RatePer::ProjectDomain => format!("project/domain {key:?}"),
                };
                return Err(AgentError::resource_exhausted(
                    format!(
                        "route {:?}: rate limit of {} creates/s (burst {}) for {whose} exceeded; retry in {} ms",
                        self.name,
                        b.limit.rps,
                        b.burst,
                        wait.as_millis().max(1)
                    ),
                    Some(wait),
                ));
            }
        }
        self.admission.admit_call().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::category::TaskCategory;

    fn subject<'a>(c: &'a TaskCategory, project: &'a str) -> Subject<'a> {
        Subject { category: c, project: Some(project), domain: Some("d"), labels: None, execution: None }
    }

    #[tokio::test]
    async fn buckets_are_per_project_and_refill() {
        let config: RouteConfig =
            toml::from_str("target = \"local\"\nrate_limit = { per = \"project\", rps = 10.0, burst = 2 }\n").unwrap();
        let limits = RouteLimits::new("r", &config);
        let c = TaskCategory::new("t", 0);
        assert!(limits.admit(&subject(&c, "a")).await.is_ok());
        assert!(limits.admit(&subject(&c, "a")).await.is_ok());
        let err = limits.admit(&subject(&c, "a")).await.unwrap_err();
        assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted);
        assert!(err.message.contains("project \"a\"") && err.retry_after.is_some(), "{err}");
        assert!(err.retry_after.unwrap() <= Duration::from_millis(100));
        assert!(limits.admit(&subject(&c, "b")).await.is_ok(), "another project has its own bucket");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(limits.admit(&subject(&c, "a")).await.is_ok(), "a token arrived after 100 ms");
    }

    #[test]
    fn idle_buckets_are_forgotten_beyond_the_cap() {
        let b = Buckets {
            limit: RateLimit { per: RatePer::Project, rps: 1000.0, burst: Some(1) },
            burst: 1.0,
            state: Mutex::new(HashMap::new()),
        };
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS + 10 {
            let _ = b.take(format!("p{i}"), t0 + Duration::from_millis(i as u64 * 10));
        }
        assert!(b.state.lock().unwrap().len() <= MAX_BUCKETS);
    }
}
