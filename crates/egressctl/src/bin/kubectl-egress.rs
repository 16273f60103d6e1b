//! `kubectl-egress`: the kubectl plugin (`kubectl egress status|explain|validate|completion`).
//! kubectl runs any executable named `kubectl-<name>` on `PATH`; this is `egressctl` under the
//! plugin's name, so usage and completion say `kubectl egress`.

fn main() -> std::process::ExitCode {
    egressctl::cli::main_as("kubectl egress")
}
