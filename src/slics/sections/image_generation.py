"""Fig. 11 of the SLiCS paper (sections 3.7 and 4.6): images generated from concept components.

Optional and full-profile only (``image_to_prompt.generation.enabled: true``, extra
``diffusion``, the weights in the Hugging Face cache); the demo pipeline never generates.
For a few COCO queries with at least two concepts:

1. the concept-filtered query of each of its concepts, ``z_j = project(q, j)`` (the vector
   concept-filtered retrieval uses; section 4.6 "visualizing concept-filtered embeddings"),
   from an S-SLiCS dictionary fitted with the ``K`` that section 03 chose on the validation
   queries (:func:`chosen_k`, read from ``results/metrics/slics_clip.json``);
2. carried into CLIP ViT-L/14's image space by the orthogonal Procrustes map fitted on the
   Flickr30k images (:func:`centred_alignment`): ``y_j = z_j R + mu_tgt``;
3. turned into an image by ``image_to_prompt.generation.method``:

   * ``ding2023`` (default, the paper's): ``y_j`` becomes the *prompt* of text-conditioned
     Stable Diffusion 1.x by the closed-form conversion of Ding et al. (2023)
     (:func:`slics.embedding.diffusion.ding2023_prompt_embeds`, with the text projection of
     the same ViT-L/14 the map aligns to: SD 1.x's text encoder is that model's);
   * ``unclip``: ``y_j``, rescaled to the norm of the query image's own unCLIP embedding,
     conditions Stable unCLIP directly.

The figure has one row per query: the query image, then one generated image per concept,
all from the same initial noise (``seed``), so the images of a row differ by their prompt only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.alignment import ProcrustesAlignment

FIGURE = "image_to_prompt_generation.png"


def concept_prompts(components, R, target_norm: float) -> np.ndarray:
    """Aligned concept components as prompts: ``z_j R``, rescaled to ``target_norm`` (zero rows stay zero).

    ``target_norm`` is the typical norm of the conditioning space's image embeddings (the
    mean norm of unnormalised ViT-L/14 image embeddings for Stable unCLIP).
    """
    Z = np.asarray(components, dtype=np.float64) @ np.asarray(R, dtype=np.float64)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z * (float(target_norm) / np.where(norms == 0, 1, norms))


def centred_alignment(X_src, Y_tgt, train) -> dict:
    """Procrustes between the two spaces centred by their training means (how the prompt map is read here).

    SLiCS components live in the source space after its image mean is removed, so the map is
    fitted between centred embeddings; a component ``z`` becomes ``z R + mu_tgt`` in the target
    space (the target mean put back: both generation methods expect an image embedding).
    """
    X, Y = np.asarray(X_src, dtype=np.float64)[train], np.asarray(Y_tgt, dtype=np.float64)[train]
    mu_x, mu_y = X.mean(axis=0), Y.mean(axis=0)
    R = ProcrustesAlignment().fit(X - mu_x, Y - mu_y).map_
    return {"R": R, "source_mean": mu_x, "target_mean": mu_y}


def aligned_embeddings(components, alignment: dict) -> np.ndarray:
    """Concept components carried into the target image space: ``z R + mu_tgt`` (rows)."""
    return np.asarray(components, dtype=np.float64) @ alignment["R"] + alignment["target_mean"]


def generation_prompts(components, alignment: dict, target_norms) -> np.ndarray:
    """unCLIP's conditions of concept components: ``z R + mu_tgt``, each rescaled to its image's embedding norm."""
    P = aligned_embeddings(components, alignment)
    return concept_prompts(P, np.eye(P.shape[1]), 1.0) * np.asarray(target_norms, dtype=np.float64).reshape(-1, 1)


def chosen_k(dataset: str, backbone: str, metrics_path: str | Path | None = None) -> int:
    """The ``K`` section 03 chose for ``dataset`` under ``backbone`` (its validation sub-label mAP@20).

    Read from ``results/metrics/slics_clip.json`` (key ``K`` of case ``<dataset>/<backbone>``,
    written by notebook 03 from :func:`slics.sections.retrieval_protocol.best_k`), so that the
    generated images come from the dictionary whose retrieval the paper's tables report.
    """
    from ..utils.config import upstream_results_dir

    path = Path(metrics_path) if metrics_path is not None else upstream_results_dir() / "metrics" / "slics_clip.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run stage 03_slics_clip (profile full, {backbone} in "
                                f"slics_clip.backbones.full) first; generation uses the K it chose.")
    case = f"{dataset}/{backbone}"
    entry = json.loads(path.read_text()).get(case, {})
    if "K" not in entry:
        raise KeyError(f"{path} has no chosen K for {case}: run stage 03_slics_clip with {backbone} in "
                       f"slics_clip.backbones.full.")
    return int(entry["K"])


def clip_text_projection(backbone: str, device=None) -> np.ndarray:
    """``W_t`` (e, h) of a registry CLIP backbone's text tower (open_clip stores its transpose)."""
    from ..embedding.registry import load_backbone

    model = load_backbone(backbone, device=device).model
    proj = model.text_projection
    W = proj.weight if hasattr(proj, "weight") else proj.T          # nn.Linear (e, h) or a (h, e) parameter
    return W.detach().float().cpu().numpy()


def conditions(method: str, pipe, components, alignment: dict, *, image=None, text_projection=None,
               pinv_atol: float = 0.0):
    """What the pipeline of ``method`` is conditioned on for each concept component (rows).

    ``ding2023``: ``prompt_embeds`` (n, 77, h) of the aligned components (the empty prompt as
    template; needs ``text_projection``; ``pinv_atol``: the pseudo-inverse's cut-off, see
    :func:`~slics.embedding.diffusion.ding2023_prompt_embeds`). ``unclip``: image embeddings (n, e)
    rescaled to the norm of ``image``'s own unCLIP embedding.
    """
    from ..utils.validation import check_choice

    method = check_choice(method, "image_to_prompt.generation.method", ("ding2023", "unclip"))
    if method == "ding2023":
        from ..embedding.diffusion import ding2023_prompt_embeds, template_prompt

        if text_projection is None:
            raise ValueError("method ding2023 needs the text projection of the target CLIP (text_projection).")
        return ding2023_prompt_embeds(aligned_embeddings(components, alignment), text_projection,
                                      *template_prompt(pipe, ""), atol=pinv_atol)
    import torch

    with torch.inference_mode():
        px = pipe.feature_extractor(images=image, return_tensors="pt").pixel_values.to(pipe.device)
        norm = float(pipe.image_encoder(px).image_embeds.norm())
    return generation_prompts(components, alignment, [norm] * len(components)).astype(np.float32)


def generation_figure(pipe, method: str, queries: list[dict], alignment: dict, gen: dict, seed: int,
                      text_projection=None, **size):
    """Fig. 11: one row per query, its image then one generated image per concept component.

    ``queries``: dicts with ``title``, ``image`` (PIL or array) and ``components`` (concept
    name -> source-space vector). ``gen``: ``n_steps``, ``guidance_scale`` and ``pinv_atol``
    (ding2023) or ``noise_level`` (unclip). ``size``: ``height``/``width`` passed to the pipeline (tests).
    """
    import matplotlib.pyplot as plt

    from ..embedding.diffusion import generate_from_embeddings, generate_from_prompt_embeds

    steps, scale = int(gen["n_steps"]), float(gen["guidance_scale"])
    n_cols = 1 + max(len(q["components"]) for q in queries)
    fig, axes = plt.subplots(len(queries), n_cols, figsize=(2.4 * n_cols, 2.6 * len(queries)), squeeze=False)
    for row, q in zip(axes, queries):
        names = list(q["components"])
        cond = conditions(method, pipe, np.array([q["components"][n] for n in names]), alignment,
                          image=q["image"], text_projection=text_projection,
                          pinv_atol=float(gen["pinv_atol"]) if method == "ding2023" else 0.0)
        images = []
        for i in range(len(names)):        # every image of a row from the same initial noise
            if method == "ding2023":
                images += generate_from_prompt_embeds(pipe, cond[i:i + 1], seed=seed, n_steps=steps,
                                                      guidance_scale=scale, **size)
            else:
                images += generate_from_embeddings(pipe, cond[i:i + 1], seed=seed, n_steps=steps,
                                                   guidance_scale=scale, noise_level=int(gen["noise_level"]), **size)
        for ax, img, title in zip(row, [q["image"], *images], [f"query {q['title']}", *names]):
            ax.imshow(img)
            ax.set_title(title, fontsize=8)
        for ax in row:
            ax.axis("off")
    label = "Ding et al. (2023) prompt, Stable Diffusion" if method == "ding2023" else "Stable unCLIP"
    fig.suptitle(f"Images generated from the aligned concept components of each query ({label})", fontsize=9)
    fig.tight_layout()
    return fig


def check_generation(params: dict) -> dict:
    """``image_to_prompt.generation`` when this run may generate, else a clear error (before any work)."""
    cfg = params["image_to_prompt"]
    if params["profile"] != "full" or not cfg["generation"]["enabled"]:
        raise RuntimeError("image-to-prompt generation runs only with profile: full and "
                           "image_to_prompt.generation.enabled: true (it needs Stable Diffusion's weights).")
    source, table2 = cfg["full"]["source_backbone"], params["slics_clip"]["backbones"]["full"]
    if source not in table2:
        raise ValueError(f"generation uses the K stage 03 chose for {source} (image_to_prompt.full.source_backbone), "
                         f"but slics_clip.backbones.full is {table2}: add {source} to it.")
    return cfg["generation"]


def query_images(rs, rows) -> list:
    """The COCO images of ``rows`` of ``rs`` (PIL), from the image archive."""
    from ..data.images import ZipImages, ensure_archive

    return list(ZipImages(ensure_archive(rs.dataset), [rs.data.image_ids[q] for q in rows]))


def generate(params: dict, device=None) -> Path:
    """Fig. 11 (full profile, optional): ``results/figures/image_to_prompt_generation.png``.

    Needs ``profile: full``, ``image_to_prompt.generation.enabled: true``, the extra
    ``diffusion``, the weights of the generation model, the Flickr30k images, the COCO embeddings
    of ``image_to_prompt.full.source_backbone`` (one of Table 2's ``slics_clip.backbones``: stage
    ``embed_coco`` made them, or stage ``03_slics_clip`` encoded them) and the ``K`` stage
    ``03_slics_clip`` chose for it. Every
    missing piece raises before the dictionary is fitted or images are generated.
    """
    from ..embedding.diffusion import load_pipeline, require_diffusers
    from ..embedding.retrieval_set import load_set
    from ..evaluation import SLiCSMethod
    from ..utils.config import results_dir
    from ..utils.plotting import save_figure
    from .image_to_prompt import full_embeddings, split_rows
    from .retrieval_protocol import example_queries

    gen = check_generation(params)
    cfg, seed, method = params["image_to_prompt"], int(params["seed"]), gen["method"]
    source = cfg["full"]["source_backbone"]
    require_diffusers()
    K = chosen_k("coco", source)
    pipe = load_pipeline(method, gen["model"][method], device=device)   # fails fast without the weights
    X, Y = full_embeddings(params, device=device)                 # fails fast without images or CLIP weights
    W = clip_text_projection(cfg["full"]["target_backbone"], device) if method == "ding2023" else None
    train, _ = split_rows(len(X), int(cfg["n_train"]), int(cfg["n_test"]), seed)
    alignment = centred_alignment(X, Y, train)
    if source != params["embed"]["backbone"]:        # a Table 2 backbone stage 03 encoded (its cache)
        from ..embedding.embed_multilabel import backbone_embeddings

        backbone_embeddings("coco", params, source)
    rs = load_set("coco", params, source)
    sc = params["slics_clip"]
    model = SLiCSMethod(K, int(sc["n_iter"]), sc["batch_size"]["coco"], seed).fit(rs).model
    chosen = example_queries(rs, int(gen["n_queries"]), seed)
    queries = [{"title": rs.data.image_ids[q], "image": img,
                "components": {rs.data.general_names[j]: model.project(rs.X[q:q + 1], int(j))[0]
                               for j in np.flatnonzero(rs.data.general[q])}}
               for q, img in zip(chosen, query_images(rs, chosen))]
    fig = generation_figure(pipe, method, queries, alignment, gen, seed, text_projection=W)
    dest = results_dir() / "figures" / FIGURE
    save_figure(fig, dest)
    return dest


def main(argv=None) -> int:
    """``python -m slics.sections.image_generation generate``: the optional Fig. 11 (full profile)."""
    import argparse

    from ..utils.config import load_params

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["generate"])
    parser.parse_args(argv)
    print(generate(load_params()))
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    raise SystemExit(run_main(main))
