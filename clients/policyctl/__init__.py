"""policyctl — the platform's command line for the people who work with it: drafting agencies
(drafts), communication offices, press agencies and commune officers (tasks), consultation
portals (comments and bulk imports), everyone who reads scorecards and timelines, and
operators (events and dead letters). Reference: docs/cli.md."""
