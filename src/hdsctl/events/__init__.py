"""Workspace events. Spec slice: hdsctl.environment.events; component: hdsctl.components.events;
guardrails in the policy pack. Here: the DICOM event schema and routing (`schema`), and
reading what Event Grid delivered to a queue or dead-lettered (`tail`, `hdsctl events tail`)."""
