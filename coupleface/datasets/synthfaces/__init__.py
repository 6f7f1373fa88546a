"""SynthFaces: the embedded procedural face data set (generator and writers)."""
from .generator import (
    SYNTHFACES_VERSION,
    SynthFacesConfig,
    get_identity,
    get_identity_family,
    render_identity_image,
    render_identity_jpeg,
)
from .identity import SynthIdentity
from .writers import (
    ALL_PAIRS_TEST_ID_OFFSET,
    ALL_PAIRS_VAL_ID_OFFSET,
    TEST_ID_OFFSET,
    VAL_ID_OFFSET,
    PairSet,
    make_pair_set,
    make_worker_pool,
    plan_pairs,
    write_image_folder,
)

# the generator: identities and their images
__all__ = ['SYNTHFACES_VERSION', 'SynthFacesConfig', 'SynthIdentity', 'get_identity',
           'get_identity_family', 'render_identity_image', 'render_identity_jpeg']
# the writers: pair sets, record files, image folders and the identity ranges of the splits
__all__ += ['PairSet', 'plan_pairs', 'make_pair_set', 'make_worker_pool', 'write_image_folder',
            'VAL_ID_OFFSET', 'TEST_ID_OFFSET', 'ALL_PAIRS_VAL_ID_OFFSET',
            'ALL_PAIRS_TEST_ID_OFFSET']
