"""The drafting service: the API drafting systems use to register drafts and move them
through drafting, consultation and adoption; every change is published as a drafting event."""
