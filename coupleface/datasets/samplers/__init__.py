"""Samplers: RelationSampler (batches of mined identity groups, CoupleFace), PartnerSampler
(shuffled batches with mined partner images appended) and ResumableSampler (DefaultSampler
that resumes inside an epoch)."""
from .partner_sampler import PartnerSampler
from .relation_sampler import RelationSampler
from .resumable_sampler import ResumableSampler

__all__ = ['PartnerSampler', 'RelationSampler', 'ResumableSampler']
