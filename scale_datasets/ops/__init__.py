"""Image operations (scaling and friends) used to render the datasets."""
