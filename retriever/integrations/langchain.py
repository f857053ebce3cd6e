"""The retriever as a LangChain retriever (``pip install 'skill-retriever[langchain]'``).

Each ranked skill becomes a ``Document`` whose text is the skill rendered for a prompt and
whose metadata says why it was found::

    from retriever import SkillRetriever
    from retriever.integrations.langchain import SkillLangChainRetriever

    lc = SkillLangChainRetriever(skill_retriever=SkillRetriever.open(), k=3)
    docs = lc.invoke("my webhook handler processes the same event twice")
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the LangChain adapter needs langchain-core: pip install 'skill-retriever[langchain]'"
    ) from e

from retriever.present.skill import skill_markdown


class SkillLangChainRetriever(BaseRetriever):
    """Ranked skills as LangChain documents, best first."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    skill_retriever: Any  # a retriever.SkillRetriever
    k: int = 5
    sections: list[str] | None = None  # None: every section of each skill

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.skill_retriever.search(query, k=self.k)
        if result.no_match:  # nothing fits: no context beats misleading context
            return []
        docs = []
        for hit in result.skills:
            skill = self.skill_retriever.skill(hit.id)
            docs.append(
                Document(
                    page_content=skill_markdown(skill, self.sections),
                    metadata={
                        "id": hit.id,
                        "name": hit.name,
                        "score": hit.score,
                        "via": hit.via,
                        "collection": hit.collection,
                        "matched": [f"{m.field}: {m.text}" for m in hit.matches],
                        # an anti-pattern is what to avoid: said so wherever it is listed
                        "patterns": [
                            p.name if p.kind == "pattern" else f"Avoid: {p.name}"
                            for p in hit.patterns
                        ],
                        "handoffs": [
                            h.to_dict() for h in result.handoffs if h.from_skill == hit.id
                        ],
                    },
                )
            )
        return docs
