//! Structs with named fields → flytekit dataclasses.
use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{parse_quote, DataStruct, DeriveInput, Fields, LitStr};

use crate::attrs;

pub fn expand(input: &DeriveInput, data: &DataStruct) -> syn::Result<TokenStream> {
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "FlyteType can be derived for structs with named fields (flytekit dataclasses) and fieldless enums",
        ));
    };
    let container = attrs::container(&input.attrs)?;
    let krate: syn::Path = container.krate.clone().unwrap_or_else(|| parse_quote!(::tern_type_transformers));
    let ident = &input.ident;
    let title = container.name.clone().unwrap_or_else(|| ident.unraw().to_string());
    let title = LitStr::new(&title, ident.span());

    let mut specs = Vec::new();
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let mut wire_names = Vec::new();
    for field in &named.named {
        let member = attrs::member(&field.attrs, true)?;
        let Some(field_ident) = field.ident.as_ref() else { continue };
        let rust_name = field_ident.unraw().to_string();
        let wire = member.rename.clone().unwrap_or_else(|| match container.rename_all {
            Some(rule) => rule.apply(&rust_name),
            None => rust_name.clone(),
        });
        let wire = LitStr::new(&wire, field_ident.span());
        let ty = &field.ty;
        if let Some(f) = &member.default_fn {
            specs.push(quote!(#krate::dataclass::FieldSpec::defaulted_with::<#ty>(#wire, #f)));
            reads.push(quote!(#field_ident: __reader.field_or_else::<#ty>(#wire, #f)?));
        } else if member.default {
            specs.push(quote!(#krate::dataclass::FieldSpec::defaulted::<#ty>(#wire)));
            reads.push(quote!(#field_ident: __reader.field_or_default::<#ty>(#wire)?));
        } else {
            specs.push(quote!(#krate::dataclass::FieldSpec::required::<#ty>(#wire)));
            reads.push(quote!(#field_ident: __reader.field::<#ty>(#wire)?));
        }
        writes.push(quote!(__writer.field::<#ty>(#wire, &self.#field_ident)?;));
        wire_names.push(wire);
    }
    let count = u32::try_from(wire_names.len()).map_err(|_| syn::Error::new_spanned(ident, "too many fields"))?;
    let deny = container.deny_unknown_fields.then(|| quote!(__reader.deny_unknown(&[#(#wire_names),*])?;));

    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(parse_quote!(#krate::FlyteType));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let build = quote!(#krate::dataclass::dataclass_literal_type(#title, ::std::vec![#(#specs),*]));
    // The type (with its JSON schema) is built once per non-generic struct.
    let literal_type = if input.generics.type_params().next().is_none() {
        quote! {
            static CACHE: ::std::sync::OnceLock<#krate::__core::LiteralType> = ::std::sync::OnceLock::new();
            CACHE.get_or_init(|| #build).clone()
        }
    } else {
        build
    };

    Ok(quote! {
        impl #impl_generics #krate::FlyteType for #ident #ty_generics #where_clause {
            fn literal_type() -> #krate::__core::LiteralType {
                #literal_type
            }

            fn to_literal(&self) -> ::std::result::Result<#krate::__core::Literal, #krate::TransformError> {
                let mut __writer = #krate::dataclass::StructWriter::new(#count);
                #(#writes)*
                ::std::result::Result::Ok(__writer.finish())
            }

            fn from_literal(
                literal: &#krate::__core::Literal,
            ) -> ::std::result::Result<Self, #krate::TransformError> {
                let mut __reader = #krate::dataclass::StructReader::new(literal, #title)?;
                #deny
                ::std::result::Result::Ok(Self { #(#reads),* })
            }
        }
    })
}
