//! Shared by the gateway's tests: certificates, configs, and gateways served on loopback.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use tern_agent_api::prelude::*;
use tern_gateway::{Gateway, GatewayConfig, Mode, ServeHandle};

/// A CA, a server certificate for `localhost`/`127.0.0.1` and a client certificate, as
/// PEM files in a directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        for (name, sans, usage) in [
            ("server", vec!["localhost".to_owned(), "127.0.0.1".to_owned()], ExtendedKeyUsagePurpose::ServerAuth),
            ("client", vec!["propeller".to_owned()], ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

pub fn env(pairs: &[(&str, &str)]) -> Arc<BTreeMap<String, String>> {
    Arc::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

/// A config from `text` with the data store under `root`.
pub fn config(text: &str, root: &Path, env_pairs: &[(&str, &str)]) -> GatewayConfig {
    let text = format!("{text}\n[data_store]\nroot = {:?}\n", root.display().to_string());
    GatewayConfig::parse_with_env(&text, Some(Path::new("tern.toml")), env(env_pairs)).unwrap()
}

pub struct Served {
    pub handle: ServeHandle,
    pub gateway: Gateway,
    pub _root: tempfile::TempDir,
}

impl Served {
    pub fn addr(&self) -> String {
        self.handle.local_addr.to_string()
    }
}

/// `tern serve` in-process, on a free loopback port.
pub async fn serve(text: &str, env_pairs: &[(&str, &str)]) -> Served {
    let root = tempfile::tempdir().unwrap();
    let c = config(text, root.path(), env_pairs);
    let gateway = Gateway::build(&c, Mode::Serve, Default::default()).unwrap();
    let handle = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    Served { handle, gateway, _root: root }
}

pub fn echo_template(task_type: &str) -> core::TaskTemplate {
    core::TaskTemplate { r#type: task_type.into(), ..Default::default() }
}

/// Execution metadata naming a project, domain, node and attempt (what propeller sends).
pub fn execution(project: &str, domain: &str, node: &str, attempt: u32) -> admin::TaskExecutionMetadata {
    admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "t".into(), project: project.into(), domain: domain.into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: project.into(),
                    domain: domain.into(),
                    name: "exec-1".into(),
                    org: String::new(),
                }),
            }),
            retry_attempt: attempt,
        }),
        ..Default::default()
    }
}

pub fn create(task_type: &str, project: &str, domain: &str) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        template: Some(echo_template(task_type).into()),
        task_execution_metadata: Some(execution(project, domain, "n0", 0).into()),
        output_prefix: "s3://bucket/out".into(),
        ..Default::default()
    }
}

pub fn get(task_type: &str, meta: Vec<u8>) -> admin::GetTaskRequest {
    admin::GetTaskRequest {
        task_category: Some(admin::TaskCategory { name: task_type.into(), version: 0 }),
        resource_meta: meta,
        ..Default::default()
    }
}

pub fn delete(task_type: &str, meta: Vec<u8>) -> admin::DeleteTaskRequest {
    admin::DeleteTaskRequest {
        task_category: Some(admin::TaskCategory { name: task_type.into(), version: 0 }),
        resource_meta: meta,
        ..Default::default()
    }
}

/// A webhook task's header with `custom` as its config.
pub fn webhook_header(custom: serde_json::Value) -> admin::CreateRequestHeader {
    admin::CreateRequestHeader {
        template: Some((core::TaskTemplate {
            r#type: "webhook".into(),
            custom: Some(tern_type_transformers::render::json_to_struct(custom.as_object().expect("an object"))),
            ..Default::default()
        }).into()),
        output_prefix: "out".into(),
        ..Default::default()
    }
}

/// `request` sent to a freshly built and served gateway `times` times — each a restarted `tern serve`, with no
/// cache and no memory of the previous create — then asked with GetTask: each start's (resource_meta, Resource).
pub async fn create_and_get_across_restarts(
    config: &GatewayConfig,
    request: &admin::CreateTaskRequest,
    times: usize,
) -> Vec<(Vec<u8>, admin::Resource)> {
    use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
    let template = request.template.as_ref().expect("a template");
    let category = admin::TaskCategory { name: template.r#type.clone(), version: template.task_type_version };
    let mut answers = Vec::new();
    for _ in 0..times {
        let gateway = Gateway::build(config, Mode::Serve, Default::default()).unwrap();
        let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
        let client = GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap();
        let meta = client.create_task(request.clone()).await.unwrap();
        let resource = client
            .get_task(admin::GetTaskRequest { resource_meta: meta.clone(), task_category: Some(category.clone()), ..Default::default() })
            .await
            .unwrap();
        server.shutdown().await.unwrap();
        answers.push((meta, resource));
    }
    answers
}
