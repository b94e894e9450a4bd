//! `notation-hsm-notary`: hsm-notary's PKCS#11 signer as a notation plugin
//! (see `hsm_notary::plugin::hsm`).

fn main() -> std::process::ExitCode {
    hsm_notary::plugin::hsm::main()
}
