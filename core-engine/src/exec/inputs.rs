//! `--input name=value` texts → the workflow's inputs LiteralMap, checking every input
//! before anything runs.
use std::collections::BTreeMap;

use tern_agent_api::core;
use tern_type_transformers::parse::parse_literal;
use tern_type_transformers::types::type_expr;

use crate::compile::CompiledWorkflow;
use crate::error::{codes, InputError, InputErrors};

/// Splits `name=value` (the value may contain `=`).
pub fn split_input(text: &str) -> Option<(String, String)> {
    text.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
}

/// Parses raw inputs against the workflow's declared inputs and fills defaults.
pub fn resolve_inputs(wf: &CompiledWorkflow, raw: &[(String, String)]) -> Result<core::LiteralMap, InputErrors> {
    let mut errors = Vec::new();
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in raw {
        if given.insert(k.as_str(), v.as_str()).is_some() {
            errors.push(InputError {
                code: codes::MALFORMED_RUN_INPUT,
                input: k.clone(),
                message: "given more than once".into(),
            });
        }
    }
    let declared: Vec<String> = wf.inputs.iter().map(|i| format!("{} ({})", i.name, type_expr(&i.ty))).collect();
    for name in given.keys() {
        if !wf.inputs.iter().any(|i| i.name == *name) {
            let message = if declared.is_empty() {
                "the workflow declares no inputs".to_owned()
            } else {
                format!("the workflow declares no such input (declared: {})", declared.join(", "))
            };
            errors.push(InputError { code: codes::UNKNOWN_RUN_INPUT, input: (*name).to_owned(), message });
        }
    }
    let mut literals = std::collections::BTreeMap::new();
    for input in &wf.inputs {
        match given.get(input.name.as_str()) {
            Some(text) => match parse_literal(text, &input.ty) {
                Ok(l) => {
                    literals.insert(input.name.clone(), l);
                }
                Err(e) => errors.push(InputError {
                    code: codes::BAD_RUN_INPUT,
                    input: input.name.clone(),
                    message: e.to_string(),
                }),
            },
            None => match &input.default {
                Some(d) => {
                    literals.insert(input.name.clone(), d.clone());
                }
                None => errors.push(InputError {
                    code: codes::MISSING_RUN_INPUT,
                    input: input.name.clone(),
                    message: format!(
                        "required input ({}) was not given; pass --input {}=VALUE",
                        type_expr(&input.ty),
                        input.name
                    ),
                }),
            },
        }
    }
    if errors.is_empty() {
        Ok(core::LiteralMap { literals })
    } else {
        Err(InputErrors { errors })
    }
}

/// Checks a LiteralMap given directly (Rust callers) against the declared inputs, filling
/// defaults.
pub fn complete_inputs(wf: &CompiledWorkflow, mut given: core::LiteralMap) -> Result<core::LiteralMap, InputErrors> {
    let mut errors = Vec::new();
    for name in given.literals.keys() {
        if !wf.inputs.iter().any(|i| &i.name == name) {
            errors.push(InputError {
                code: codes::UNKNOWN_RUN_INPUT,
                input: name.clone(),
                message: "the workflow declares no such input".into(),
            });
        }
    }
    for input in &wf.inputs {
        match given.literals.get(&input.name) {
            Some(l) if !tern_agent_api::outputs::literal_has_shape(l, &input.ty) => errors.push(InputError {
                code: codes::BAD_RUN_INPUT,
                input: input.name.clone(),
                message: format!("value is not a {}", type_expr(&input.ty)),
            }),
            Some(_) => {}
            None => match &input.default {
                Some(d) => {
                    given.literals.insert(input.name.clone(), d.clone());
                }
                None => errors.push(InputError {
                    code: codes::MISSING_RUN_INPUT,
                    input: input.name.clone(),
                    message: format!("required input ({}) was not given", type_expr(&input.ty)),
                }),
            },
        }
    }
    if errors.is_empty() {
        Ok(given)
    } else {
        Err(InputErrors { errors })
    }
}
