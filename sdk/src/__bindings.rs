//! Generated bindings for the world this build targets. Private to the SDK:
//! what authors use is re-exported from the crate root.
#![allow(missing_docs, clippy::all)]

#[cfg(all(feature = "provider", feature = "store"))]
compile_error!("aloft-sdk: enable exactly one of the features `provider` and `store`");

#[cfg(all(feature = "provider", not(feature = "store")))]
wit_bindgen::generate!({
    path: "../wit/provider@0.1.0",
    world: "provider",
    pub_export_macro: true,
    export_macro_name: "__export_world",
    default_bindings_module: "aloft_sdk::__bindings",
});

#[cfg(feature = "store")]
wit_bindgen::generate!({
    path: "../wit/provider@0.1.0",
    world: "store",
    pub_export_macro: true,
    export_macro_name: "__export_world",
    default_bindings_module: "aloft_sdk::__bindings",
});
