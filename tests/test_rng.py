"""Layer 1: named random streams: each draw is a function of (stream, seed, key) alone, and streams are apart."""

from __future__ import annotations

import pytest

import itertools

import torch

from hf_pretrain.rng import Stream, derive_seed, legacy_seed, numpy_generator, torch_generator

pytestmark = pytest.mark.unit


def test_a_seed_is_a_function_of_stream_seed_and_key():
    assert derive_seed(Stream.DYNAMIC_MASKS, 0, 3, 7) == derive_seed(Stream.DYNAMIC_MASKS, 0, 3, 7)
    assert 0 <= derive_seed(Stream.DYNAMIC_MASKS, 0, 3, 7) < 2**63
    assert torch.equal(torch.rand(5, generator=torch_generator(Stream.NSP_PAIRS, 4, 1)),
                       torch.rand(5, generator=torch_generator(Stream.NSP_PAIRS, 4, 1)))
    assert numpy_generator(Stream.PREPARED_SPLIT, 1).random() == numpy_generator(Stream.PREPARED_SPLIT, 1).random()
    assert 0 <= legacy_seed(Stream.MINHASH, 2**40) < 2**32


def test_streams_seeds_and_keys_never_collide():
    """The same batch of sequences draws different masks and ELECTRA noise; seed 0 is a seed like any other; a key
    is not confused with a longer or reordered one."""
    seeds = {
        derive_seed(stream, seed, *key)
        for stream, seed, key in itertools.product(Stream, (0, 1, 2), ((), (0,), (3, 7), (7, 3), (3, 7, 0)))
    }
    assert len(seeds) == len(Stream) * 3 * 5
    assert derive_seed(Stream.DYNAMIC_MASKS, 0, 5) != derive_seed(Stream.GENERATOR_SAMPLING, 0, 5)


def test_every_stream_is_named_once():
    values = [s.value for s in Stream]
    assert len(values) == len(set(values))


def test_a_stream_named_by_a_string_is_its_own():
    """An objective outside the package names its stream ("toy_noise"): stable, apart from every member and from
    other names; a member's own name is that member."""
    named = derive_seed("toy_noise", 0, 3, 7)
    assert named == derive_seed("toy_noise", 0, 3, 7)
    assert named != derive_seed("toy_noise_2", 0, 3, 7)
    assert named not in {derive_seed(stream, 0, 3, 7) for stream in Stream}
    assert derive_seed("NSP_PAIRS", 4, 1) == derive_seed(Stream.NSP_PAIRS, 4, 1)
    assert derive_seed("toy_noise", 0) == 8915245544376990733  # a named stream's draws are part of the results too
