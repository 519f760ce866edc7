"""Search machinery shared by the methods: what happens after the images are described.

* `index`: exact and approximate k-NN search over FAISS (L2, L1, cosine, Hamming), saved with a
  manifest;
* `rerank`: re-sorting a first method's candidates by a second descriptor (paper 002);
* `two_stage`: Hamming search on CNN codes, then Radon barcodes on the candidates (paper 003);
* `coarse_to_fine`: a Hamming pool of hash codes ranked by FC1 features (paper 001);
* `roi`: matching a query's region of interest inside the hits (paper 003);
* `scale`: how the indexes behave at archive scale (the scale chapter's benchmark).
"""
