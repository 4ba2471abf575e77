"""Fixtures of the contracts' chain tests (helpers in tests/fixtures/contracts_world.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from contracts_world import Chain, World, make_world, open_protocol

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy


@pytest.fixture(scope="module")
def chain(stack: dict) -> Chain:
    """The stack's nodeos with the contracts built and deployed (accounts jobs, registry)."""
    url = str(stack["nodeos"])
    contract_build.build()
    contract_deploy.deploy(contract_deploy.Deployment(url))
    return Chain(url, "jobs", "registry", devchain.connect(url))


@pytest.fixture
def world(chain: Chain) -> World:
    """Fresh accounts with a protocol (its whole fund deposited) and one registered worker and
    dispatcher."""
    w = make_world(chain)
    open_protocol(chain, w)
    chain.push_many([
        (chain.jobs, "regworker", {"worker": w.workers[0], "researcher": w.researcher},
         {chain.jobs: "active"}),
        (chain.jobs, "regdisptch", {"dispatcher": w.dispatchers[0], "researcher": w.researcher},
         {chain.jobs: "active"}),
    ])
    return w


@pytest.fixture(scope="module")
def fake_token(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A test-only contract (contracts/testing/faketoken) that stores any eosio.token-shaped
    rows and sends actions named like ours on as notifications."""
    artifact = contract_build.build_one("faketoken", "testing/faketoken",
                                        tmp_path_factory.mktemp("faketoken"))
    account = chain.account("fake")
    devchain.deploy_contract(account, artifact.wasm, artifact.abi)
    return account
