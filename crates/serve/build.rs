// The shared libduckdb rpath, and a rebuild when `ui/dist` appears or changes: `sluice serve`
// embeds the built UI (release) or reads it from there (debug).
mod rpath {
    include!("../../build/rpath.rs");
}

fn main() {
    rpath::main();
    println!("cargo:rerun-if-changed=../../ui/dist");
}
