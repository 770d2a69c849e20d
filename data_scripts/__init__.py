"""Download and convert the public datasets of the five papers: ``python -m data_scripts.<name> --dest DIR``.

Scripts (each states URL, size, sha256, licence and citation in its docstring and ``--help``):

=================  ==========================================================================
``tnbc``           TNBC nuclei segmentation (Naylor et al. 2018), H&E, instance masks
``bc_deepliif``    BC-DeepLIIF Ki67 (breast), positive / negative nuclei
``janowczyk``      Janowczyk & Madabhushi 2016 nuclei, H&E, *partial* masks
``monuseg``        MoNuSeg 2018 (Kumar et al.), H&E, polygon annotations
``crchisto``       CRCHistoPhenotypes (Sirinukunwattana 2016): gated; instructions + converter
``pannuke``        PanNuke (Gamper 2019/2020): gated; instructions + converter
``lizard``         Lizard (Graham 2021): gated; instructions only
=================  ==========================================================================

Every script streams with a progress bar, resumes a partial download, verifies the checksum and moves
files into place atomically; on any failure it prints a clear message, exits non-zero and leaves nothing
a later run would trust. The converted dataset (``DIR/<name>/meta.json`` + ``items/*.npz``) is read by
:class:`nucleikit.data.ConvertedDataset` with the same item format as the synthetic tiles.
"""
