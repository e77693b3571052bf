"""One driver module per report section; each notebook calls exactly one of them."""
