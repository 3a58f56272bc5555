"""Applications built on trained models; importing this package registers each one in
``genlab.PIPELINES``.

A pipeline composes a fitted model and metrics for one application: it is built from a
model (or a run folder with ``from_run(dir)``), does its job in ``__call__`` and measures
it with ``evaluate``; it never trains. The autoencoder applications:

* ``Compression`` (``"compression"``): quantised codes, bits per image, PSNR;
* ``Denoiser`` (``"denoising"``): PSNR gain over the noisy input;
* ``AnomalyDetector`` (``"anomaly-detection"``): reconstruction error as a score, ROC-AUC;
  ``holdout_class_auc`` runs the one-class-held-out protocol.

and ``SuperResolution`` (``"super-resolution"``): upscaling with a trained ``srgan``,
PSNR/SSIM against bicubic interpolation; ``MoleculeGenerator`` (``"molecule-generation"``):
SMILES from a molecule model and their MOSES metrics; ``HillClimb`` (``"goal-directed"``):
goal-directed molecule design by fine-tuning, ``LatentSearch`` (``"latent-optimization"``):
the same in a SMILES VAE's latent space (``molecule_design`` also holds property conditioning);
``DiffusionEditor`` (``"image-editing"``): image-to-image (SDEdit) and inpainting (RePaint)
with a trained ``diffusion`` model.
"""
from .anomaly_detection import AnomalyDetector, holdout_class_auc
from .compression import Compression
from .denoising import Denoiser, ReconstructionPipeline, add_noise
from .diffusion_editing import DiffusionEditor
from .molecule_design import HillClimb, LatentSearch
from .molecules import MoleculeGenerator
from .super_resolution import SuperResolution, ssim

__all__ = ["AnomalyDetector", "Compression", "Denoiser", "DiffusionEditor", "ReconstructionPipeline",
           "add_noise", "holdout_class_auc", "HillClimb", "LatentSearch", "MoleculeGenerator", "SuperResolution", "ssim"]
