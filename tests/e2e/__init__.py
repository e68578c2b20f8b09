"""End-to-end and attack tests: real processes signalled, real servers counting what they got."""
