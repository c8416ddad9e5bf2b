"""The drafting service: drafting systems register drafts and move them through drafting,
consultation and adoption over gRPC, or by producing drafting events to the intake topic;
every accepted change is published as a drafting event."""
