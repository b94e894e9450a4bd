//! Every trust policy shipped in `policies/` is valid, and selects as documented.

use hsm_notary::engine::Verifier;
use hsm_notary_suite::{component_engine, root};
use notary_verifier::{DocumentKind, Level, PolicyInput, Selector};

fn policy(name: &str, kind: DocumentKind) -> PolicyInput {
    PolicyInput {
        kind,
        content: std::fs::read(root().join("policies").join(name)).expect("policy file"),
    }
}

#[test]
fn shipped_oci_policy_is_valid_and_selects_by_scope() {
    let engine = component_engine();
    let oci = policy("trustpolicy.oci.json", DocumentKind::Oci);
    let statements = engine.check_policy(&oci).expect("no trap").expect("valid");
    assert_eq!(statements.len(), 4);
    let select = |reference: &str| {
        engine
            .select_policy(&oci, &Selector::OciReference(reference.to_owned()))
            .expect("no trap")
            .expect("selected")
    };
    let prod = select("registry.example.com/prod/app@sha256:0f");
    assert_eq!(
        (prod.statement.as_str(), prod.level),
        ("production-images", Level::Strict)
    );
    let skip = select("registry.example.com/base/scratch@sha256:0f");
    assert_eq!(skip.level, Level::Skip);
    let other = select("docker.io/library/alpine@sha256:0f");
    assert_eq!(
        (other.statement.as_str(), other.level),
        ("everything-else", Level::Audit)
    );
}

#[test]
fn shipped_blob_policy_is_valid_and_global() {
    let engine = component_engine();
    let blob = policy("trustpolicy.blob.json", DocumentKind::Blob);
    assert!(engine.check_policy(&blob).expect("no trap").is_ok());
    let global = engine
        .select_policy(&blob, &Selector::BlobPolicyName(None))
        .expect("no trap")
        .expect("global");
    assert_eq!(global.statement, "release-artifacts");
}

/// Every document of every YAML file in `policies/`, parsed.
fn kubernetes_documents() -> Vec<(String, serde_yaml_ng::Value)> {
    let mut files = Vec::new();
    for dir in ["gatekeeper", "kyverno", "ratify", "kubernetes"] {
        for entry in std::fs::read_dir(root().join("policies").join(dir)).expect("policies dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("yaml file");
        let documents = hsm_notary_suite::yaml_documents(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.extend(
            documents
                .into_iter()
                .map(|d| (path.display().to_string(), d)),
        );
    }
    out
}

type Labels = Vec<(String, String)>;

fn text<'a>(value: &'a serde_yaml_ng::Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(|v| v.as_str())
}

/// The shipped Kubernetes resources hold together as the API server and the controllers
/// would read them (there is no cluster here, so the schema is checked for what these
/// files use): each document names a known `apiVersion`/`kind` and a DNS-1123 name; a
/// Deployment's selector selects its own pods, every volume mount names a volume, every
/// probe and Service targets a port a container declares; every Service and
/// NetworkPolicy selects pods some Deployment makes; and the URLs Gatekeeper and Kyverno
/// call are a Service, namespace and port the manifests define; a Constraint's kind is one
/// its ConstraintTemplate defines.
#[test]
fn shipped_kubernetes_resources_fit_together() {
    use serde_yaml_ng::Value;
    let documents = kubernetes_documents();
    let known = [
        ("v1", "Namespace"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("externaldata.gatekeeper.sh/v1beta1", "Provider"),
        ("mutations.gatekeeper.sh/v1", "Assign"),
        ("templates.gatekeeper.sh/v1", "ConstraintTemplate"),
        ("constraints.gatekeeper.sh/v1beta1", "HsmNotaryVerified"),
        ("kyverno.io/v1", "ClusterPolicy"),
        ("config.ratify.deislabs.io/v1beta1", "Verifier"),
    ];
    let dns_1123 = |name: &str| {
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    };
    let labels = |v: Option<&Value>| -> Labels {
        v.and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().expect("label key").to_owned(),
                            v.as_str().expect("label value").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // (namespace, pod labels, container ports) of each Deployment.
    let mut pods: Vec<(String, Labels, Vec<u64>)> = Vec::new();
    // (name.namespace:ports, namespace, selector, target ports) of each Service.
    let mut services: Vec<(String, String, Labels, Vec<u64>)> = Vec::new();
    // (file, namespace, pod selector) of each NetworkPolicy.
    let mut selectors: Vec<(String, String, Labels)> = Vec::new();
    for (file, doc) in &documents {
        let api = text(doc, &["apiVersion"]).unwrap_or_default();
        let kind = text(doc, &["kind"]).unwrap_or_default();
        assert!(
            known.contains(&(api, kind)),
            "{file}: unknown apiVersion/kind {api}/{kind}"
        );
        let name = text(doc, &["metadata", "name"]).unwrap_or_default();
        assert!(dns_1123(name), "{file}: {kind} name {name:?}");
        let namespace = text(doc, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_owned();
        match kind {
            "Deployment" => {
                let template = &doc["spec"]["template"];
                let own = labels(template["metadata"].get("labels"));
                let wanted = labels(doc["spec"]["selector"].get("matchLabels"));
                assert!(
                    !wanted.is_empty() && wanted.iter().all(|l| own.contains(l)),
                    "{file}: {name}'s selector does not select its pods"
                );
                let spec = &template["spec"];
                let volumes: Vec<&str> = spec["volumes"]
                    .as_sequence()
                    .map(|v| v.iter().filter_map(|v| text(v, &["name"])).collect())
                    .unwrap_or_default();
                let mut ports = Vec::new();
                let containers = spec["containers"].as_sequence().expect("containers");
                for container in containers {
                    let cname = text(container, &["name"]).expect("container name");
                    assert!(
                        text(container, &["image"]).is_some(),
                        "{file}: {cname} image"
                    );
                    for port in container["ports"].as_sequence().into_iter().flatten() {
                        ports.push(port["containerPort"].as_u64().expect("containerPort"));
                    }
                    for mount in container["volumeMounts"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                    {
                        let volume = text(mount, &["name"]).expect("mount name");
                        assert!(
                            volumes.contains(&volume),
                            "{file}: {cname} mounts {volume}, which is no volume"
                        );
                        assert!(text(mount, &["mountPath"]).is_some_and(|p| p.starts_with('/')));
                    }
                    if let Some(port) = container["readinessProbe"]["httpGet"]["port"].as_u64() {
                        assert!(ports.contains(&port), "{file}: {cname}'s probe port {port}");
                    }
                    for arg in container["args"].as_sequence().into_iter().flatten() {
                        assert!(
                            arg.as_str().is_some(),
                            "{file}: {cname}: args must be strings: {arg:?}"
                        );
                    }
                }
                pods.push((namespace, own, ports));
            }
            "Service" => {
                let targets = doc["spec"]["ports"]
                    .as_sequence()
                    .expect("ports")
                    .iter()
                    .map(|p| p["targetPort"].as_u64().expect("targetPort"))
                    .collect();
                let ports = doc["spec"]["ports"]
                    .as_sequence()
                    .expect("ports")
                    .iter()
                    .map(|p| p["port"].as_u64().expect("port").to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                services.push((
                    format!("{name}.{namespace}:{ports}"),
                    namespace.clone(),
                    labels(doc["spec"].get("selector")),
                    targets,
                ));
            }
            "NetworkPolicy" => selectors.push((
                file.clone(),
                namespace,
                labels(doc["spec"]["podSelector"].get("matchLabels")),
            )),
            _ => {}
        }
    }
    let selects = |namespace: &str, wanted: &[(String, String)]| {
        pods.iter()
            .filter(|(ns, own, _)| ns == namespace && wanted.iter().all(|l| own.contains(l)))
            .map(|(_, _, ports)| ports)
            .next()
    };
    for (address, namespace, wanted, targets) in &services {
        let ports = selects(namespace, wanted)
            .unwrap_or_else(|| panic!("Service {address} selects no pods"));
        for target in targets {
            assert!(
                ports.contains(target),
                "Service {address} targets port {target}, which its pods do not declare"
            );
        }
    }
    for (file, namespace, wanted) in &selectors {
        assert!(
            selects(namespace, wanted).is_some(),
            "{file}: a NetworkPolicy selects no pods"
        );
    }
    // What the admission controllers call is served.
    let mut called = 0;
    for (file, doc) in &documents {
        let url = text(doc, &["spec", "url"]).or_else(|| {
            doc["spec"]["rules"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|r| r["context"].as_sequence().into_iter().flatten())
                .find_map(|c| text(c, &["apiCall", "service", "url"]))
        });
        let Some(url) = url else { continue };
        let authority = url
            .strip_prefix("https://")
            .and_then(|u| u.split('/').next())
            .unwrap_or_else(|| panic!("{file}: {url} is not https"));
        assert!(
            services.iter().any(|(address, ..)| address == authority),
            "{file}: {url} names no Service here"
        );
        called += 1;
    }
    assert_eq!(called, 3, "two Gatekeeper Providers and the Kyverno policy");
    // The Constraint is of the kind its ConstraintTemplate defines.
    let defined: Vec<&str> = documents
        .iter()
        .filter_map(|(_, d)| text(d, &["spec", "crd", "spec", "names", "kind"]))
        .collect();
    for (file, doc) in &documents {
        if text(doc, &["apiVersion"]) == Some("constraints.gatekeeper.sh/v1beta1") {
            let kind = text(doc, &["kind"]).unwrap_or_default();
            assert!(
                defined.contains(&kind),
                "{file}: no ConstraintTemplate defines {kind}"
            );
        }
    }
}
