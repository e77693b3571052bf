"""The full profile, rehearsed at tiny scale offline: ``python -m slics.rehearsal`` (``make rehearse-full``).

Into a scratch folder that is never the project's ``data/`` or ``results/``, it writes

* fixture datasets in the real on-disk formats (:mod:`.fixtures`): CIFAR-10 python pickles,
  ``mirflickr25k.zip`` and its DeepHash label lists, the COCO 2017 annotation and image zips,
  the Multi30k caption and image lists with a folder of Flickr30k JPEGs;
* random weights for every real architecture (:mod:`.weights`) under the exact Hugging Face
  repository and file names that the loading code looks up (open_clip ViT-B/32 or RN50 and
  ViT-L/14, DINOv2 ViT-B/14, TiTok-L-32; the backbones the tiny ``params.yaml`` names, so
  ``--target-backbone clip-rn50`` leaves ViT-L/14 out), in a scratch Hugging Face cache;
* a scratch resource registry (``SLICS_RESOURCES``) with the fixtures' own sha256 sums, sizes and
  md5 sums, so that every verification of the real path runs on them;
* a copy of the project's ``dvc.yaml``, notebooks and reference values with a tiny ``params.yaml``
  (profile ``full``), which becomes the project root of the run (``SLICS_ROOT``);

then runs every stage command of ``dvc.yaml`` in order (:mod:`.run`), through every notebook to
its tables, and checks that every declared output was written. The TiTok and DINOv2 sections run on
one dataset each (``run.BACKBONE_DATASETS``); every other stage on both.
"""
