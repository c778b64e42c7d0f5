//! FlytePropeller's part for container templates (DESIGN §4): before CreateTask, propeller
//! renders its template variables in `container.args` (and `command`). The engine does the
//! same, so an agent gets the request from `tern run` that it would get from propeller, and a
//! flytekit-serialized container task (`pyflyte-execute --inputs {{.input}} --output-prefix
//! {{.outputPrefix}} …`) runs unchanged under either.
//!
//! Syntax as propeller's: `{{ .Name }}` or `{{$Name}}`, spaces allowed, keyword
//! case-insensitive, input names case-sensitive. What propeller renders:
//!
//! | placeholder | value |
//! |---|---|
//! | `{{.input}}` | `<attempt prefix>/inputs.pb`, which the engine writes first |
//! | `{{.inputPrefix}}`, `{{.outputPrefix}}` | the attempt's prefix |
//! | `{{.rawOutputDataPrefix}}` | `<attempt prefix>/raw` |
//! | `{{.checkpointOutputPrefix}}` | `<attempt prefix>/_flytecheckpoints` |
//! | `{{.prevCheckpointPrefix}}` | the previous attempt's checkpoint prefix; `""` on the first attempt, as propeller |
//! | `{{.perRetryUniqueKey}}` | a name unique to the attempt |
//! | `{{.inputs.NAME}}` | a primitive input's value, formatted as propeller formats it |
//!
//! Anything else is left as written: agent-specific placeholders (the shell agent's
//! `{{.workdir}}`, or `{{.inputs.f}}` for a file input, which the shell agent turns into a
//! local path) stay the agent's business, and an agent that cannot run a placeholder says so.
use std::fmt::Write as _;

use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LiteralValue;
use tern_agent_api::core::primitive::Value as Primitive;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::datastore::join_uri;

/// The values of one attempt's placeholders.
#[derive(Debug, Clone)]
pub(crate) struct AttemptPaths {
    /// Where `inputs.pb` is and outputs go: `<data root>/<execution>/<node>/<attempt>`.
    pub prefix: String,
    /// The previous attempt's prefix, on a retry.
    pub previous: Option<String>,
    pub unique_key: String,
}

impl AttemptPaths {
    fn checkpoint(prefix: &str) -> String {
        join_uri(prefix, "_flytecheckpoints")
    }

    fn value(&self, keyword: &str) -> Option<String> {
        Some(match keyword {
            "input" => join_uri(&self.prefix, "inputs.pb"),
            "inputprefix" | "outputprefix" => self.prefix.clone(),
            "rawoutputdataprefix" => join_uri(&self.prefix, "raw"),
            "checkpointoutputprefix" => Self::checkpoint(&self.prefix),
            "prevcheckpointprefix" => self.previous.as_deref().map_or_else(|| "\"\"".to_owned(), Self::checkpoint),
            "perretryuniquekey" => self.unique_key.clone(),
            _ => return None,
        })
    }
}

/// A name unique to one attempt, usable where propeller puts its generated names (lowercase
/// letters, digits and `-`).
pub(crate) fn unique_key(execution: &str, node: &str, attempt: u32) -> String {
    let raw = format!("{execution}-{node}-{attempt}");
    raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// Renders the placeholders of a container template's `command` and `args`; other targets
/// are left alone.
pub(crate) fn render_container(template: &mut core::TaskTemplate, paths: &AttemptPaths, inputs: &core::LiteralMap) {
    let Some(core::task_template::Target::Container(container)) = template.target.as_mut() else {
        return;
    };
    for word in container.command.iter_mut().chain(container.args.iter_mut()) {
        if word.contains("{{") {
            *word = render(word, paths, inputs);
        }
    }
}

fn render(text: &str, paths: &AttemptPaths, inputs: &core::LiteralMap) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open + 2..].find("}}") else {
            break;
        };
        let whole = &rest[open..open + 2 + len + 2];
        out.push_str(&rest[..open]);
        match resolve(&rest[open + 2..open + 2 + len], paths, inputs) {
            Some(value) => out.push_str(&value),
            None => out.push_str(whole),
        }
        rest = &rest[open + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

fn resolve(inner: &str, paths: &AttemptPaths, inputs: &core::LiteralMap) -> Option<String> {
    let name = inner.trim();
    let keyword = name.strip_prefix('.').or_else(|| name.strip_prefix('$'))?;
    let lower = keyword.to_ascii_lowercase();
    if lower.starts_with("inputs.") {
        return inputs.literals.get(&keyword["inputs.".len()..]).and_then(primitive_text);
    }
    paths.value(&lower)
}

/// A primitive literal as propeller's template engine prints it (Go's `%v`; timestamps
/// RFC 3339, durations as Go prints them); `None` for anything else.
fn primitive_text(literal: &core::Literal) -> Option<String> {
    let LiteralValue::Scalar(scalar) = literal.value.as_ref()? else {
        return None;
    };
    match scalar.value.as_ref()? {
        ScalarValue::Primitive(p) => Some(match p.value.as_ref()? {
            Primitive::Integer(i) => i.to_string(),
            Primitive::FloatValue(f) => go_float(*f),
            Primitive::StringValue(s) => s.clone(),
            Primitive::Boolean(b) => b.to_string(),
            Primitive::Datetime(t) => {
                let nanos = u32::try_from(t.nanos).ok()?;
                chrono::DateTime::from_timestamp(t.seconds, nanos)?.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            }
            Primitive::Duration(d) => go_duration(d.seconds, d.nanos),
        }),
        ScalarValue::Union(u) => u.value.as_deref().and_then(primitive_text),
        _ => None,
    }
}

/// Go's `%v` for a float64 (strconv's shortest `%g`): the shortest round-tripping digits, in
/// exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`, `1e-05`,
/// `123456`, `2.5`, `3`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "2.5e0", "-1.234e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        // Plain notation; Rust's Display is shortest round-trip and never uses an exponent.
        return f.to_string();
    }
    let mut out = String::from(mantissa);
    let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    out
}

/// A duration as Go's `time.Duration.String()` prints it: `1h2m3.5s`, `1.5s`, `2ms`, `0s`.
fn go_duration(seconds: i64, nanos: i32) -> String {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    if total == 0 {
        return "0s".into();
    }
    let sign = if total < 0 { "-" } else { "" };
    let n = total.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, scale) = match n {
            n if n < 1_000 => return format!("{sign}{n}ns"),
            n if n < 1_000_000 => ("µs", 1_000u128),
            _ => ("ms", 1_000_000u128),
        };
        return format!("{sign}{}{unit}", decimal(n, scale));
    }
    let (h, rem) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let mut out = String::from(sign);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{}s", decimal(rem, 1_000_000_000));
    out
}

/// `n / scale` with the fraction's trailing zeros dropped.
fn decimal(n: u128, scale: u128) -> String {
    let (whole, frac) = (n / scale, n % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::LiteralMapBuilder;

    fn paths(previous: Option<&str>) -> AttemptPaths {
        AttemptPaths {
            prefix: "s3://b/e/n0/1".into(),
            previous: previous.map(str::to_owned),
            unique_key: unique_key("E1", "n_0", 1),
        }
    }

    fn container(args: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            target: Some(core::task_template::Target::Container(core::Container {
                command: vec!["pyflyte-execute".into()],
                args: args.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn args(t: &core::TaskTemplate) -> Vec<String> {
        match t.target.as_ref() {
            Some(core::task_template::Target::Container(c)) => c.args.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flytekit_entrypoint_args_render_as_propeller_renders_them() {
        let mut t = container(&[
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{.outputPrefix}}",
            "--raw-output-data-prefix",
            "{{.rawOutputDataPrefix}}",
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
            "--resolver",
            "flytekit.core.python_auto_container.default_task_resolver",
        ]);
        render_container(&mut t, &paths(None), &core::LiteralMap::default());
        assert_eq!(
            args(&t),
            [
                "--inputs",
                "s3://b/e/n0/1/inputs.pb",
                "--output-prefix",
                "s3://b/e/n0/1",
                "--raw-output-data-prefix",
                "s3://b/e/n0/1/raw",
                "--checkpoint-path",
                "s3://b/e/n0/1/_flytecheckpoints",
                "--prev-checkpoint",
                "\"\"",
                "--resolver",
                "flytekit.core.python_auto_container.default_task_resolver",
            ]
        );
        let mut retry = container(&["{{ .PrevCheckpointPrefix }}", "{{$perRetryUniqueKey}}", "{{ .InputPrefix }}"]);
        render_container(&mut retry, &paths(Some("s3://b/e/n0/0")), &core::LiteralMap::default());
        assert_eq!(args(&retry), ["s3://b/e/n0/0/_flytecheckpoints", "e1-n-0-1", "s3://b/e/n0/1"]);
    }

    #[test]
    fn primitive_inputs_render_and_everything_else_is_left_for_the_agent() {
        let inputs = LiteralMapBuilder::new()
            .with("n", &3i64)
            .unwrap()
            .with("x", &2.5f64)
            .unwrap()
            .with("big", &1e21f64)
            .unwrap()
            .with("whole", &3.0f64)
            .unwrap()
            .with("s", &"a b".to_owned())
            .unwrap()
            .with("ok", &true)
            .unwrap()
            .with("xs", &vec![1i64, 2])
            .unwrap()
            .build();
        let mut t = container(&[
            "n={{.inputs.n}}",
            "{{ .Inputs.x }}",
            "{{.inputs.big}}",
            "{{.inputs.whole}}",
            "{{.inputs.s}}",
            "{{.inputs.ok}}",
            "{{.inputs.xs}}",
            "{{.inputs.missing}}",
            "{{.workdir}}",
            "{{.taskTemplatePath}}",
            "{{ unclosed",
        ]);
        render_container(&mut t, &paths(None), &inputs);
        assert_eq!(
            args(&t),
            [
                "n=3",
                "2.5",
                "1e+21",
                "3",
                "a b",
                "true",
                "{{.inputs.xs}}",
                "{{.inputs.missing}}",
                "{{.workdir}}",
                "{{.taskTemplatePath}}",
                "{{ unclosed",
            ]
        );
    }

    #[test]
    fn sql_and_other_targets_are_untouched() {
        let mut t = core::TaskTemplate {
            target: Some(core::task_template::Target::Sql(core::Sql {
                statement: "SELECT '{{.input}}'".into(),
                dialect: 0,
            })),
            ..Default::default()
        };
        let before = t.clone();
        render_container(&mut t, &paths(None), &core::LiteralMap::default());
        assert_eq!(t, before);
    }

    #[test]
    fn floats_and_durations_print_as_go_prints_them() {
        for (f, want) in [
            (2.5, "2.5"),
            (3.0, "3"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-0.25, "-0.25"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
        for ((s, n), want) in [
            ((0, 0), "0s"),
            ((1, 500_000_000), "1.5s"),
            ((3723, 0), "1h2m3s"),
            ((60, 0), "1m0s"),
            ((0, 2_000_000), "2ms"),
            ((0, 1_500), "1.5µs"),
            ((0, 7), "7ns"),
            ((-90, 0), "-1m30s"),
            ((7200, 1), "2h0m0.000000001s"),
        ] {
            assert_eq!(go_duration(s, n), want, "{s}s {n}ns");
        }
    }
}
