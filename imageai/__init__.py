"""ImageAi: a small CNN explained stage by stage (no Streamlit in this package)."""
