// Keep the addon mapped after Node unloads it (worker exit, env teardown):
// threads it started may still be finishing, and thread-local destructors
// registered from its code must not point into unmapped memory.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
