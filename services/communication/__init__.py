"""The communication task engine: turns every lifecycle event into the communication tasks
the playbook asks for, tracks them to completion and escalates overdue ones."""
