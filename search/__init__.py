"""Search strategies, the bilevel optimizer, fit_supernet, export and plots."""
