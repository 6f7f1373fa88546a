"""coupleface.utils.cli: the argparse helpers shared by the tools."""
import argparse

import pytest

from coupleface.utils.cli import (
    add_embedding_arguments,
    add_flip_arguments,
    add_model_arguments,
    add_progress_argument,
    add_synthfaces_arguments,
    check_batch_size,
)


def _parser(*helpers) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    for helper in helpers:
        helper(parser)
    return parser


def test_model_and_embedding_arguments():
    parser = _parser(add_model_arguments,
                     lambda p: add_embedding_arguments(p, batch_size=128, chunk_size=2048))
    args = parser.parse_args(['cfg.py', 'ckpt.pth'])
    assert (args.config, args.checkpoint) == ('cfg.py', 'ckpt.pth')
    assert (args.batch_size, args.chunk_size, args.device, args.no_progress) == (
        128, 2048, 'cpu', False)
    args = _parser(lambda p: add_embedding_arguments(p, 64, progress=False)).parse_args(
        ['--batch-size', '8', '--device', 'cuda:0'])
    assert (args.batch_size, args.device) == (8, 'cuda:0')
    assert not hasattr(args, 'chunk_size') and not hasattr(args, 'no_progress')
    assert _parser(add_progress_argument).parse_args(['--no-progress']).no_progress


def test_batch_size_below_one_is_a_usage_error(capsys):
    parser = _parser(lambda p: add_embedding_arguments(p))
    check_batch_size(parser, parser.parse_args(['--batch-size', '1']))
    with pytest.raises(SystemExit):
        check_batch_size(parser, parser.parse_args(['--batch-size', '0']))
    assert '--batch-size must be >= 1, got 0' in capsys.readouterr().err


def test_flip_arguments_default_to_the_config():
    parser = _parser(add_flip_arguments)
    assert parser.parse_args([]).flip_test is None
    assert parser.parse_args(['--flip']).flip_test is True
    assert parser.parse_args(['--no-flip']).flip_test is False
    with pytest.raises(SystemExit):
        parser.parse_args(['--flip', '--no-flip'])


def test_synthfaces_arguments():
    args = _parser(lambda p: add_synthfaces_arguments(p, difficulty=0.3)).parse_args([])
    assert (args.size, args.difficulty, args.seed) == (112, 0.3, 0)
    args = _parser(lambda p: add_synthfaces_arguments(p, 0.8)).parse_args(
        ['--size', '56', '--difficulty', '0.5', '--seed', '3'])
    assert (args.size, args.difficulty, args.seed) == (56, 0.5, 3)
