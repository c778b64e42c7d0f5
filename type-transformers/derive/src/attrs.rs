//! `#[flyte(...)]` attributes on the type, its fields and its variants.
use syn::{Attribute, LitStr, Path};

use crate::case::RenameAll;

#[derive(Default)]
pub struct ContainerAttrs {
    pub name: Option<String>,
    pub rename_all: Option<RenameAll>,
    pub deny_unknown_fields: bool,
    pub krate: Option<Path>,
}

#[derive(Default)]
pub struct MemberAttrs {
    pub rename: Option<String>,
    pub default: bool,
    /// `default = "path::to::fn"`: the default comes from that function.
    pub default_fn: Option<Path>,
}

pub fn container(attrs: &[Attribute]) -> syn::Result<ContainerAttrs> {
    let mut out = ContainerAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("flyte")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                out.name = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("rename_all") {
                let lit = meta.value()?.parse::<LitStr>()?;
                out.rename_all = Some(RenameAll::parse(&lit.value()).ok_or_else(|| {
                    syn::Error::new_spanned(&lit, format!("unknown rename_all {:?}; {}", lit.value(), RenameAll::HELP))
                })?);
            } else if meta.path.is_ident("deny_unknown_fields") {
                out.deny_unknown_fields = true;
            } else if meta.path.is_ident("crate") {
                out.krate = Some(meta.value()?.parse::<LitStr>()?.parse()?);
            } else {
                return Err(
                    meta.error("unknown flyte attribute; expected name, rename_all, deny_unknown_fields or crate")
                );
            }
            Ok(())
        })?;
    }
    Ok(out)
}

pub fn member(attrs: &[Attribute], allow_default: bool) -> syn::Result<MemberAttrs> {
    let mut out = MemberAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("flyte")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if allow_default && meta.path.is_ident("default") {
                out.default = true;
                if meta.input.peek(syn::Token![=]) {
                    out.default_fn = Some(meta.value()?.parse::<LitStr>()?.parse()?);
                }
            } else if allow_default {
                return Err(meta.error("unknown flyte field attribute; expected rename or default"));
            } else {
                return Err(meta.error("unknown flyte variant attribute; expected rename"));
            }
            Ok(())
        })?;
    }
    Ok(out)
}
