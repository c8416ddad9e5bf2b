"""The publication service: records the promulgation of adopted regulations, fires their
effective date and reminders from durable timers, links amendments and repeals, and keeps
one timeline per regulation — from every stage's events — served over gRPC and exported as
open data."""
