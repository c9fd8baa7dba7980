//! The gRPC collector's service (`protos/sluice/collector/v1/collector.proto`) compiled with
//! protox, a protobuf compiler in Rust, so building needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protos");
    let file = protos.join("sluice/collector/v1/collector.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&protos])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
