"""Streamlit-side helpers shared by the pages (state, widgets, stage views); logic stays in `imageai`."""
