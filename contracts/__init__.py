"""The jobs and registry contracts: C++ sources, hand-written ABIs, build and deploy tooling."""
