"""Registries of coupleface: child nodes of mmpretrain's (and so of MMEngine's).

Every registry has ``scope='coupleface'`` and ``locations`` that import the
modules registering into it, so a config with ``default_scope='coupleface'``
resolves our types *and* every mmpretrain/MMEngine type (a lookup falls back to
the parent registries) without ``custom_imports``. mmpretrain's own modules are
listed in ``locations`` too, because a parent registry is searched without
importing its locations.
"""
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import Registry
from mmpretrain.registry import DATA_SAMPLERS as PRETRAIN_DATA_SAMPLERS
from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS
from mmpretrain.registry import EVALUATORS as PRETRAIN_EVALUATORS
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmpretrain.registry import LOG_PROCESSORS as PRETRAIN_LOG_PROCESSORS
from mmpretrain.registry import LOOPS as PRETRAIN_LOOPS
from mmpretrain.registry import METRICS as PRETRAIN_METRICS
from mmpretrain.registry import MODEL_WRAPPERS as PRETRAIN_MODEL_WRAPPERS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS as PRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.registry import OPTIM_WRAPPERS as PRETRAIN_OPTIM_WRAPPERS
from mmpretrain.registry import OPTIMIZERS as PRETRAIN_OPTIMIZERS
from mmpretrain.registry import PARAM_SCHEDULERS as PRETRAIN_PARAM_SCHEDULERS
from mmpretrain.registry import RUNNERS as PRETRAIN_RUNNERS
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmpretrain.registry import VISBACKENDS as PRETRAIN_VISBACKENDS
from mmpretrain.registry import VISUALIZERS as PRETRAIN_VISUALIZERS
from mmpretrain.registry import WEIGHT_INITIALIZERS as PRETRAIN_WEIGHT_INITIALIZERS

SCOPE = 'coupleface'

RUNNERS = Registry('runner', parent=PRETRAIN_RUNNERS, scope=SCOPE,
                   locations=['coupleface.engine'])
LOOPS = Registry('loop', parent=PRETRAIN_LOOPS, scope=SCOPE,
                 locations=['coupleface.engine'])
HOOKS = Registry('hook', parent=PRETRAIN_HOOKS, scope=SCOPE,
                 locations=['coupleface.engine', 'mmpretrain.engine'])
LOG_PROCESSORS = Registry('log_processor', parent=PRETRAIN_LOG_PROCESSORS,
                          scope=SCOPE, locations=['coupleface.engine'])
OPTIMIZERS = Registry('optimizer', parent=PRETRAIN_OPTIMIZERS, scope=SCOPE,
                      locations=['coupleface.engine', 'mmpretrain.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=PRETRAIN_OPTIM_WRAPPERS,
                          scope=SCOPE, locations=['coupleface.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=PRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=['coupleface.engine', 'mmpretrain.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler',
                            parent=PRETRAIN_PARAM_SCHEDULERS, scope=SCOPE,
                            locations=['coupleface.engine'])
# Collate functions (``train_dataloader.collate_fn=dict(type=...)``): MMEngine's Runner looks
# them up in its root FUNCTIONS registry without the default scope, so ours register there
# (``coupleface.datasets`` is imported by ``register_all_modules``).
FUNCTIONS = MMENGINE_FUNCTIONS
DATASETS = Registry('dataset', parent=PRETRAIN_DATASETS, scope=SCOPE,
                    locations=['coupleface.datasets', 'mmpretrain.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=PRETRAIN_DATA_SAMPLERS,
                         scope=SCOPE,
                         locations=['coupleface.datasets',
                                    'mmpretrain.datasets'])
TRANSFORMS = Registry('transform', parent=PRETRAIN_TRANSFORMS, scope=SCOPE,
                      locations=['coupleface.datasets', 'mmpretrain.datasets'])
MODELS = Registry('model', parent=PRETRAIN_MODELS, scope=SCOPE,
                  locations=['coupleface.models', 'mmpretrain.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=PRETRAIN_MODEL_WRAPPERS,
                          scope=SCOPE, locations=['coupleface.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer',
                               parent=PRETRAIN_WEIGHT_INITIALIZERS,
                               scope=SCOPE, locations=['coupleface.models'])
METRICS = Registry('metric', parent=PRETRAIN_METRICS, scope=SCOPE,
                   locations=['coupleface.evaluation',
                              'mmpretrain.evaluation'])
EVALUATORS = Registry('evaluator', parent=PRETRAIN_EVALUATORS, scope=SCOPE,
                      locations=['coupleface.evaluation'])
VISUALIZERS = Registry('visualizer', parent=PRETRAIN_VISUALIZERS, scope=SCOPE,
                       locations=['coupleface.visualization',
                                  'mmpretrain.visualization'])
VISBACKENDS = Registry('vis_backend', parent=PRETRAIN_VISBACKENDS,
                       scope=SCOPE, locations=['coupleface.visualization'])
