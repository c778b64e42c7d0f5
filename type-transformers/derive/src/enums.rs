//! Fieldless enums → Python `Enum`s of strings.
use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{parse_quote, DataEnum, DeriveInput, Fields, LitStr};

use crate::attrs;

pub fn expand(input: &DeriveInput, data: &DataEnum) -> syn::Result<TokenStream> {
    let container = attrs::container(&input.attrs)?;
    if container.deny_unknown_fields {
        return Err(syn::Error::new_spanned(&input.ident, "deny_unknown_fields applies to structs only"));
    }
    let krate: syn::Path = container.krate.clone().unwrap_or_else(|| parse_quote!(::tern_type_transformers));
    let ident = &input.ident;
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "FlyteType needs at least one enum variant (flytekit requires a value)",
        ));
    }
    let name = container.name.clone().unwrap_or_else(|| ident.unraw().to_string());
    let name = LitStr::new(&name, ident.span());

    let mut values = Vec::new();
    let mut to_arms = Vec::new();
    let mut from_arms = Vec::new();
    for (index, variant) in data.variants.iter().enumerate() {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                variant,
                "FlyteType can be derived for fieldless enums only (use Union2..Union5 for unions of types)",
            ));
        }
        let member = attrs::member(&variant.attrs, false)?;
        let v = &variant.ident;
        let rust_name = v.unraw().to_string();
        let value = member.rename.unwrap_or_else(|| match container.rename_all {
            Some(rule) => rule.apply(&rust_name),
            None => rust_name,
        });
        let value = LitStr::new(&value, v.span());
        to_arms.push(quote!(Self::#v => #value));
        from_arms.push(quote!(#index => ::std::result::Result::Ok(Self::#v)));
        values.push(value);
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    Ok(quote! {
        impl #impl_generics #krate::FlyteType for #ident #ty_generics #where_clause {
            fn literal_type() -> #krate::__core::LiteralType {
                #krate::dataclass::enum_literal_type(&[#(#values),*])
            }

            fn to_literal(&self) -> ::std::result::Result<#krate::__core::Literal, #krate::TransformError> {
                ::std::result::Result::Ok(#krate::dataclass::enum_to_literal(match self { #(#to_arms),* }))
            }

            fn from_literal(
                literal: &#krate::__core::Literal,
            ) -> ::std::result::Result<Self, #krate::TransformError> {
                match #krate::dataclass::enum_from_literal(literal, #name, &[#(#values),*])? {
                    #(#from_arms,)*
                    other => ::std::result::Result::Err(#krate::TransformError::Unsupported(
                        ::std::format!("enum value index {} of {}", other, #name),
                    )),
                }
            }
        }
    })
}
