"""Relation mining with the teacher: identity centers, neighbour identities, hard positives.

``relation_miner.py``: the maths (centers, blocked kNN, hard positives; also
``center_cosines`` and ``hardest_by_cosine``); ``relations_file.py``: the relations file and
its metadata contract (also ``hard_positives_path``, ``load_hard_positives``);
``pipeline.py``: the one pipeline from embeddings to relations that the mining hook and the
tools run (docs/architecture.md §2.2).
"""
from .pipeline import MinedRelations, mine_relations, save_mined_relations
from .relation_miner import (
    accumulate_centers,
    centers_from_sums,
    hardest_positives,
    identity_centers,
    mine_neighbour_identities,
)
from .relations_file import RELATIONS_META_KEYS, load_relations, relations_meta, save_relations

__all__ = ['accumulate_centers', 'centers_from_sums', 'identity_centers',
           'mine_neighbour_identities', 'hardest_positives', 'RELATIONS_META_KEYS',
           'relations_meta', 'save_relations', 'load_relations', 'MinedRelations',
           'mine_relations', 'save_mined_relations']
