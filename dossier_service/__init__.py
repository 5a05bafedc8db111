"""IAS dossier service: cases, documents, access policy and audit."""
