// Tauri's build step, with an app manifest so that only Sluice's own commands exist for the
// window (capabilities/default.json allows it, and nothing else), plus the libduckdb rpath.
mod rpath {
    include!("../build/rpath.rs");
}

fn main() {
    rpath::main();
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["call", "watch"])),
    )
    .expect("tauri build step");
}
