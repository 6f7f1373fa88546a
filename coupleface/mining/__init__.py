"""Relation mining with the teacher: identity centers, neighbour identities, hard positives.

``relation_miner.py``: the maths (centers, blocked kNN, hard positives);
``relations_file.py``: the relations file and its metadata contract;
``pipeline.py``: the one pipeline from embeddings to relations that the mining hook and the
tools run (docs/architecture.md §2.2).
"""
from .pipeline import MinedRelations, mine_relations, save_mined_relations
from .relation_miner import (
    accumulate_centers,
    center_cosines,
    centers_from_sums,
    hardest_by_cosine,
    hardest_positives,
    identity_centers,
    mine_neighbour_identities,
)
from .relations_file import (
    RELATIONS_META_KEYS,
    hard_positives_path,
    load_hard_positives,
    load_relations,
    relations_meta,
    save_relations,
)

__all__ = [
    'accumulate_centers', 'centers_from_sums', 'identity_centers', 'mine_neighbour_identities',
    'center_cosines', 'hardest_by_cosine', 'hardest_positives', 'RELATIONS_META_KEYS',
    'relations_meta', 'save_relations', 'load_relations', 'hard_positives_path',
    'load_hard_positives', 'MinedRelations', 'mine_relations', 'save_mined_relations'
]
