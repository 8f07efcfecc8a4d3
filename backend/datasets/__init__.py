"""Dataset versions: publication, manifests, exports, licences and royalties."""
