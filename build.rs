//! Turns `manifest/*.yaml` into the tool registry and the Cedar schema, and validates
//! `policies/*.cedar` against it. All the work lives in `crates/codegen`, which has its own tests.
fn main() {
    flowgate_codegen::build();
}
