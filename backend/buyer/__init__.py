"""The buyer's side of the dataset API: the `provenant datasets` commands and their client."""
