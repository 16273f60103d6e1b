//! `egressctl`: the user CLI of kube-egress-gateway (see `egressctl::cli`).

fn main() -> std::process::ExitCode {
    egressctl::cli::main_as("egressctl")
}
