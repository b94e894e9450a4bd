//! The signature payload (`signature-specification.md` §Payload,
//! `application/vnd.cncf.notary.payload.v1+json`) and the OCI descriptor it signs.
//!
//! ```text
//! { "targetArtifact": { "mediaType": "...", "digest": "sha256:...", "size": 16724,
//!                       "artifactType": "...", "annotations": { "io.wabbit-networks.buildId": "123" } } }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::encoding::{go_field, go_json_type};

/// An OCI descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// `mediaType`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `digest`.
    pub digest: String,
    /// `size`.
    pub size: u64,
    /// `artifactType`, if any.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// `annotations` (user metadata in a payload).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// notation's `content.Equal`: media type, digest and size (annotations ignored).
    pub fn same_content(&self, other: &Self) -> bool {
        self.media_type == other.media_type
            && self.digest == other.digest
            && self.size == other.size
    }
}

fn type_error(value: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        go_json_type(value)
    )
}

/// Decode a payload as Go's `json.Unmarshal` into notation's payload struct.
pub fn parse(bytes: &[u8]) -> Result<Descriptor, String> {
    let value = crate::encoding::parse_json(bytes)?;
    let object = match value {
        Value::Null => return Ok(Descriptor::default()),
        Value::Object(o) => o,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type envelope.Payload",
                go_json_type(&other)
            ));
        }
    };
    match go_field(&object, "targetArtifact") {
        None | Some(Value::Null) => Ok(Descriptor::default()),
        Some(Value::Object(d)) => descriptor(d),
        Some(other) => Err(type_error(other, "Payload.targetArtifact", "v1.Descriptor")),
    }
}

fn descriptor(d: &Map<String, Value>) -> Result<Descriptor, String> {
    let text = |name: &str| -> Result<String, String> {
        match go_field(d, name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(type_error(
                other,
                &format!("Payload.targetArtifact.{name}"),
                "string",
            )),
        }
    };
    let size = match go_field(d, "size") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => {
            let size = n.as_i64().ok_or_else(|| {
                format!("json: cannot unmarshal number {n} into Go struct field Payload.targetArtifact.size of type int64")
            })?;
            u64::try_from(size).map_err(|_| format!("invalid descriptor size {size}"))?
        }
        Some(other) => return Err(type_error(other, "Payload.targetArtifact.size", "int64")),
    };
    let mut annotations = BTreeMap::new();
    match go_field(d, "annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => {
                        return Err(type_error(
                            other,
                            "Payload.targetArtifact.annotations",
                            "string",
                        ));
                    }
                };
                annotations.insert(k.clone(), v);
            }
        }
        Some(other) => {
            return Err(type_error(
                other,
                "Payload.targetArtifact.annotations",
                "map[string]string",
            ));
        }
    }
    let artifact_type = text("artifactType")?;
    Ok(Descriptor {
        media_type: text("mediaType")?,
        digest: text("digest")?,
        size,
        artifact_type: (!artifact_type.is_empty()).then_some(artifact_type),
        annotations,
    })
}

/// Build the payload for a signature over `target` (keys sorted, as notation writes it).
pub fn build(target: &Descriptor) -> Vec<u8> {
    let mut artifact = Map::new();
    if !target.annotations.is_empty() {
        artifact.insert(
            "annotations".into(),
            Value::Object(
                target
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    if let Some(artifact_type) = &target.artifact_type {
        artifact.insert("artifactType".into(), Value::String(artifact_type.clone()));
    }
    artifact.insert("digest".into(), Value::String(target.digest.clone()));
    artifact.insert("mediaType".into(), Value::String(target.media_type.clone()));
    artifact.insert("size".into(), Value::Number(target.size.into()));
    let mut root = Map::new();
    root.insert("targetArtifact".into(), Value::Object(artifact));
    serde_json::to_vec(&Value::Object(root)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_go() {
        let d = parse(
            br#"{"TargetArtifact":{"MediaType":"m","digest":"sha256:x","size":3,"extra":1}}"#,
        )
        .expect("payload");
        assert_eq!(d.media_type, "m");
        assert_eq!(d.size, 3);
        assert!(parse(br#"{"targetArtifact":{"size":"3"}}"#).is_err());
        assert!(parse(br#"{"targetArtifact":{"size":1.5}}"#).is_err());
        assert!(parse(b"[1]").is_err());
    }

    #[test]
    fn builds_sorted_payload() {
        let mut d = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: "sha256:ab".into(),
            size: 7,
            ..Descriptor::default()
        };
        d.annotations.insert("k".into(), "v".into());
        assert_eq!(
            String::from_utf8(build(&d)).expect("utf8"),
            r#"{"targetArtifact":{"annotations":{"k":"v"},"digest":"sha256:ab","mediaType":"application/vnd.oci.image.manifest.v1+json","size":7}}"#
        );
    }
}
