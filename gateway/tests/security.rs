//! Safe to expose: a test for every refusal — TLS and mTLS, wrong or missing tokens,
//! token limits, oversized messages, disabled agents, path escapes, altered handles and
//! webhook hosts outside the allowlist — over real sockets.
mod support;

use std::time::Duration;

use support::{create, delete, execution, get, serve, Pki};
use tern_agent_api::error::ErrorClass;
use tern_agent_api::grpc_client::{ClientOptions, ClientTls, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_type_transformers::FlyteType;
use tonic_health::pb::health_check_response::ServingStatus;

fn tls_config(pki: &Pki, client_ca: bool) -> String {
    let mut text = format!(
        "[server.tls]\ncert = {:?}\nkey = \"file:{}\"\n",
        pki.path("server.crt").display().to_string(),
        pki.path("server.key").display()
    );
    if client_ca {
        text.push_str(&format!("client_ca = {:?}\n", pki.path("ca.crt").display().to_string()));
    }
    text + "[agents.echo]\n"
}

fn client(url: &str, options: ClientOptions) -> GrpcAgentClient {
    GrpcAgentClient::connect_lazy_with(url, options).unwrap()
}

fn with_ca(pki: &Pki) -> ClientOptions {
    ClientOptions { tls: ClientTls { ca_pem: Some(pki.read("ca.crt")), ..Default::default() }, ..Default::default() }
}

#[tokio::test]
async fn tls_serves_https_clients_and_refuses_plaintext_ones() {
    let pki = Pki::new();
    let served = serve(&tls_config(&pki, false), &[]).await;
    let port = served.handle.local_addr.port();

    let agents = client(&format!("https://127.0.0.1:{port}"), with_ca(&pki)).list_agents().await.unwrap();
    assert_eq!(agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["echo"]);
    let agents = client(&format!("https://localhost:{port}"), with_ca(&pki)).list_agents().await.unwrap();
    assert_eq!(agents.len(), 1);

    let plain = client(&format!("http://127.0.0.1:{port}"), ClientOptions::default()).list_agents().await.unwrap_err();
    assert!(plain.is_retryable(), "a plaintext client against a TLS server fails like a transport error: {plain}");

    let untrusted = client(&format!("https://127.0.0.1:{port}"), ClientOptions::default()).list_agents().await.unwrap_err();
    assert!(untrusted.message.to_lowercase().contains("certificate"), "names the certificate problem: {untrusted}");
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_signed_by_the_client_ca() {
    let pki = Pki::new();
    let served = serve(&tls_config(&pki, true), &[]).await;
    let url = format!("https://127.0.0.1:{}", served.handle.local_addr.port());

    let anonymous = client(&url, with_ca(&pki)).list_agents().await.unwrap_err();
    assert!(anonymous.is_retryable(), "{anonymous}");

    let mut options = with_ca(&pki);
    options.tls.identity = Some((pki.read("client.crt"), Secret::new(String::from_utf8(pki.read("client.key")).unwrap())));
    assert_eq!(client(&url, options).list_agents().await.unwrap().len(), 1);

    // A client certificate from another CA is refused too.
    let other = Pki::new();
    let mut options = with_ca(&pki);
    options.tls.identity = Some((other.read("client.crt"), Secret::new(String::from_utf8(other.read("client.key")).unwrap())));
    assert!(client(&url, options).list_agents().await.is_err());
}

#[tokio::test]
async fn a_missing_key_or_a_non_pem_certificate_stops_the_start_naming_the_file() {
    let pki = Pki::new();
    let root = tempfile::tempdir().unwrap();
    let text = format!("[server.tls]\ncert = {:?}\nkey = \"file:/nonexistent/tls.key\"\n", pki.path("server.crt").display().to_string());
    let c = support::config(&text, root.path(), &[]);
    let err = tern_gateway::Gateway::build(&c, tern_gateway::Mode::Serve, Default::default()).err().unwrap().to_string();
    assert!(err.contains("TERN-G010") && err.contains("/nonexistent/tls.key"), "{err}");
    let text = format!("[server.tls]\ncert = {:?}\nkey = \"file:{}\"\n", pki.path("server.key").display().to_string(), pki.path("server.key").display());
    let c = support::config(&text, root.path(), &[]);
    let err = tern_gateway::Gateway::build(&c, tern_gateway::Mode::Serve, Default::default()).err().unwrap().to_string();
    assert!(err.contains("not a PEM CERTIFICATE"), "{err}");
}

const TOKENS: &str = "[agents.echo]\n[agents.sleep]\n\
    [[auth.tokens]]\nname = \"propeller\"\ntoken = \"env:PROPELLER_TOKEN\"\n\
    [[auth.tokens]]\nname = \"ml-team\"\ntoken = \"file:{ML}\"\ntask_types = [\"echo\"]\nprojects = [\"ml\"]\n";

const PROPELLER: &str = "propeller-token-0123456789";
const ML: &str = "ml-team-token-0123456789";

fn as_token(token: &str) -> ClientOptions {
    ClientOptions { token: Some(Secret::new(token)), ..Default::default() }
}

#[tokio::test]
async fn tokens_are_required_for_agent_calls_but_not_for_health() {
    let dir = tempfile::tempdir().unwrap();
    let ml_file = dir.path().join("ml.token");
    std::fs::write(&ml_file, format!("{ML}\n")).unwrap();
    let served = serve(&TOKENS.replace("{ML}", &ml_file.display().to_string()), &[("PROPELLER_TOKEN", PROPELLER)]).await;
    let addr = served.addr();

    for options in [ClientOptions::default(), as_token("not-a-valid-token-at-all")] {
        let err = client(&addr, options).list_agents().await.unwrap_err();
        assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
        assert_eq!(err.code, "TERN-G030", "{err}");
        assert!(!err.message.contains(PROPELLER));
    }
    let err = client(&addr, ClientOptions::default()).create_task(create("echo", "ml", "development")).await.unwrap_err();
    assert!(err.message.contains("bearer token"), "{err}");

    // Probes stay open.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let propeller = client(&addr, as_token(PROPELLER));
    assert_eq!(propeller.list_agents().await.unwrap().len(), 2);
    let fin_handle = propeller.create_task(create("echo", "finance", "production")).await.unwrap();
    assert_eq!(propeller.get_task(get("echo", fin_handle.clone())).await.unwrap().phase, Phase::Succeeded as i32);

    let ml = client(&addr, as_token(ML));
    let agents = ml.list_agents().await.unwrap();
    assert_eq!(agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["echo"], "a limited token sees only its task types");
    let handle = ml.create_task(create("echo", "ml", "development")).await.unwrap();
    assert_eq!(ml.get_task(get("echo", handle.clone())).await.unwrap().phase, Phase::Succeeded as i32);
    ml.delete_task(delete("echo", handle)).await.unwrap();

    for (request, what) in [(create("sleep", "ml", "development"), "\"sleep\""), (create("echo", "finance", "development"), "\"finance\"")] {
        let err = ml.create_task(request).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
        assert!(err.code == "TERN-G031" && err.message.contains(what) && err.message.contains("ml-team"), "{err}");
    }
    // Another project's job cannot be polled or cancelled with a token limited to "ml".
    for err in [ml.get_task(get("echo", fin_handle.clone())).await.unwrap_err(), ml.delete_task(delete("echo", fin_handle)).await.unwrap_err()] {
        assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
        assert!(err.message.contains("\"finance\""), "{err}");
    }
}

#[tokio::test]
async fn listening_without_tokens_needs_none() {
    let served = serve("[agents.echo]\n", &[]).await;
    assert!(served.gateway.authenticator.is_none());
    assert_eq!(client(&served.addr(), ClientOptions::default()).list_agents().await.unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_requests_are_refused_naming_the_limit() {
    let served = serve("[server]\nmax_message_bytes = 4096\n[agents.echo]\n", &[]).await;
    let c = client(&served.addr(), ClientOptions::default());
    let mut request = create("echo", "p", "d");
    request.inputs = Some(core::LiteralMap { literals: [("s".to_owned(), "x".repeat(10_000).to_literal().unwrap())].into() });
    let err = c.create_task(request).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidArgument, "{err}");
    assert!(err.message.contains("the limit is: 4096"), "{err}");
    assert!(!err.is_retryable(), "sending the same message again cannot succeed");
    // A request within the limit still works.
    let mut small = create("echo", "p", "d");
    small.inputs = Some(core::LiteralMap { literals: [("s".to_owned(), "x".to_owned().to_literal().unwrap())].into() });
    assert!(c.create_task(small).await.is_ok());
}

#[tokio::test]
async fn agents_left_off_are_not_reachable() {
    let served = serve("", &[]).await;
    let c = client(&served.addr(), ClientOptions::default());
    let err = c.create_task(create("shell", "p", "d")).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{err}");
    assert!(err.message.contains("shell") && err.message.contains("echo"), "names what is served: {err}");
    assert!(!c.list_agents().await.unwrap().iter().any(|a| a.name == "shell"));
}

#[tokio::test]
async fn altered_handles_are_refused_when_handles_are_signed() {
    let served = serve("[server]\nhandle_key = \"env:HANDLE_KEY\"\n[agents.echo]\n", &[("HANDLE_KEY", "k3y-k3y-k3y-k3y-k3y-k3y")]).await;
    let c = client(&served.addr(), ClientOptions::default());
    let handle = c.create_task(create("echo", "finance", "d")).await.unwrap();
    assert_eq!(c.get_task(get("echo", handle.clone())).await.unwrap().phase, Phase::Succeeded as i32);
    let forged = String::from_utf8(handle).unwrap().replace("\"finance\"", "\"ml\"");
    let err = c.get_task(get("echo", forged.into_bytes())).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
    assert!(err.message.contains("handle_key"), "{err}");
}

#[tokio::test]
async fn paths_outside_the_data_store_are_refused() {
    let served = serve("[agents.duckdb]\n", &[]).await;
    let c = client(&served.addr(), ClientOptions::default());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("data.parquet"), b"not read").unwrap();
    let dataset = tern_type_transformers::StructuredDataset::new(outside.path().display().to_string()).to_literal().unwrap();
    let request = admin::CreateTaskRequest {
        template: Some((core::TaskTemplate {
            r#type: "duckdb".into(),
            target: Some(core::task_template::Target::Sql(core::Sql { statement: "SELECT count(*) AS n FROM t".into(), dialect: 0 })),
            ..Default::default()
        }).into()),
        inputs: Some(core::LiteralMap { literals: [("t".to_owned(), dataset)].into() }),
        output_prefix: "run/1".into(),
        task_execution_metadata: Some(execution("p", "d", "n0", 0).into()),
    };
    let handle = c.create_task(request).await.unwrap();
    let mut resource = c.get_task(get("duckdb", handle.clone())).await.unwrap();
    for _ in 0..100 {
        if resource.phase != Phase::Running as i32 && resource.phase != Phase::Queued as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        resource = c.get_task(get("duckdb", handle.clone())).await.unwrap();
    }
    assert_eq!(resource.phase, Phase::Failed as i32, "{resource:?}");
    assert!(resource.message.contains("TERN-D004") && resource.message.contains("allowed roots"), "{}", resource.message);
}

#[tokio::test]
async fn webhooks_to_hosts_outside_the_allowlist_are_refused() {
    let served = serve("[agents.webhook]\nallowed_hosts = [\"hooks.example.com\"]\n", &[]).await;
    let c = client(&served.addr(), ClientOptions::default());
    let custom = serde_json::json!({"url": "http://169.254.169.254/latest/meta-data", "method": "GET"});
    let header = support::webhook_header(custom);
    let resource = c.execute_task_sync(header, Default::default()).await.unwrap();
    assert_eq!(resource.phase, Phase::Failed as i32);
    assert!(resource.message.contains("allowed_hosts"), "{}", resource.message);
    assert_eq!(resource.agent_error.unwrap().code, "TERN-W005");
}
