// Shared build script for crates whose binaries or tests link libduckdb.so: the library is the
// prebuilt one from the cache (never compiled here), so executables must find it at run time.
pub fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN:{dir}");
    }
}
