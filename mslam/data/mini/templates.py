"""Banking-intent phrase templates for the toy corpus (MINDS-14-like), one table per language.

Each intent has two templates per language, each paired with its English translation (the
reference of speech translation). Slots:

    {num}       a number spelled out by num2words in the phrase's language (amount or account/card number)
    {name}      a recipient's name (nominative)
    {name_dat}  the same name in the dative, {name_gen} in the genitive (Polish, Russian)

Every template carries a number slot or a name slot, so that the intent is told by the words
(transfer, lost, bill, exchange, ...), not by the length of the utterance.
"""
from __future__ import annotations

INTENTS = ("balance", "transfer", "lost_card", "pay_bill", "exchange_rate", "open_account")

# The same six people in every language: (nominative, dative, genitive).
_EN_NAMES = ("Anna", "Maria", "Peter", "Olga", "Martin", "Eva")


def _same(*names: str) -> list[tuple[str, str, str]]:
    return [(n, n, n) for n in names]


NAMES: dict[str, list[tuple[str, str, str]]] = {
    "en": _same(*_EN_NAMES),
    "de": _same("Anna", "Maria", "Peter", "Olga", "Martin", "Eva"),
    "fr": _same("Anne", "Marie", "Pierre", "Olga", "Martin", "Ève"),
    "es": _same("Ana", "María", "Pedro", "Olga", "Martín", "Eva"),
    "it": _same("Anna", "Maria", "Pietro", "Olga", "Martino", "Eva"),
    "pt": _same("Ana", "Maria", "Pedro", "Olga", "Martim", "Eva"),
    "pl": [("Anna", "Annie", "Anny"), ("Maria", "Marii", "Marii"), ("Piotr", "Piotrowi", "Piotra"),
           ("Olga", "Oldze", "Olgi"), ("Marcin", "Marcinowi", "Marcina"), ("Ewa", "Ewie", "Ewy")],
    "ru": [("Анна", "Анне", "Анны"), ("Мария", "Марии", "Марии"), ("Пётр", "Петру", "Петра"),
           ("Ольга", "Ольге", "Ольги"), ("Мартин", "Мартину", "Мартина"), ("Ева", "Еве", "Евы")],
}
EN_NAMES = _EN_NAMES

# TEMPLATES[lang][intent] = [(phrase in lang, English translation), ...]
TEMPLATES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "en": {
        "balance": [("what is the balance of account number {num}", "what is the balance of account number {num}"),
                    ("how much money is in account number {num}", "how much money is in account number {num}")],
        "transfer": [("transfer {num} euros to {name}", "transfer {num} euros to {name}"),
                     ("please send {num} euros to {name}", "please send {num} euros to {name}")],
        "lost_card": [("I lost my card number {num}", "I lost my card number {num}"),
                      ("my card number {num} was stolen", "my card number {num} was stolen")],
        "pay_bill": [("I want to pay a bill of {num} euros", "I want to pay a bill of {num} euros"),
                     ("please pay my phone bill of {num} euros", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("how many dollars do I get for {num} euros", "how many dollars do I get for {num} euros"),
                          ("what is the exchange rate for {num} dollars", "what is the exchange rate for {num} dollars")],
        "open_account": [("I would like to open an account for {name}", "I would like to open an account for {name}"),
                         ("open a new savings account with {num} euros", "open a new savings account with {num} euros")],
    },
    "de": {
        "balance": [("wie hoch ist der Kontostand von Konto Nummer {num}", "what is the balance of account number {num}"),
                    ("wie viel Geld ist auf Konto Nummer {num}", "how much money is in account number {num}")],
        "transfer": [("überweise {num} Euro an {name}", "transfer {num} euros to {name}"),
                     ("bitte schicke {num} Euro an {name}", "please send {num} euros to {name}")],
        "lost_card": [("ich habe meine Karte Nummer {num} verloren", "I lost my card number {num}"),
                      ("meine Karte Nummer {num} wurde gestohlen", "my card number {num} was stolen")],
        "pay_bill": [("ich möchte eine Rechnung über {num} Euro bezahlen", "I want to pay a bill of {num} euros"),
                     ("bitte bezahle meine Telefonrechnung über {num} Euro", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("wie viele Dollar bekomme ich für {num} Euro", "how many dollars do I get for {num} euros"),
                          ("wie ist der Wechselkurs für {num} Dollar", "what is the exchange rate for {num} dollars")],
        "open_account": [("ich möchte ein Konto für {name} eröffnen", "I would like to open an account for {name}"),
                         ("eröffne ein neues Sparkonto mit {num} Euro", "open a new savings account with {num} euros")],
    },
    "fr": {
        "balance": [("quel est le solde du compte numéro {num}", "what is the balance of account number {num}"),
                    ("combien d'argent y a-t-il sur le compte numéro {num}", "how much money is in account number {num}")],
        "transfer": [("vire {num} euros à {name}", "transfer {num} euros to {name}"),
                     ("envoie {num} euros à {name} s'il te plaît", "please send {num} euros to {name}")],
        "lost_card": [("j'ai perdu ma carte numéro {num}", "I lost my card number {num}"),
                      ("ma carte numéro {num} a été volée", "my card number {num} was stolen")],
        "pay_bill": [("je veux payer une facture de {num} euros", "I want to pay a bill of {num} euros"),
                     ("paie ma facture de téléphone de {num} euros s'il te plaît", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("combien de dollars j'obtiens pour {num} euros", "how many dollars do I get for {num} euros"),
                          ("quel est le taux de change pour {num} dollars", "what is the exchange rate for {num} dollars")],
        "open_account": [("je voudrais ouvrir un compte pour {name}", "I would like to open an account for {name}"),
                         ("ouvre un nouveau compte d'épargne avec {num} euros", "open a new savings account with {num} euros")],
    },
    "es": {
        "balance": [("cuál es el saldo de la cuenta número {num}", "what is the balance of account number {num}"),
                    ("cuánto dinero hay en la cuenta número {num}", "how much money is in account number {num}")],
        "transfer": [("transfiere {num} euros a {name}", "transfer {num} euros to {name}"),
                     ("por favor envía {num} euros a {name}", "please send {num} euros to {name}")],
        "lost_card": [("he perdido mi tarjeta número {num}", "I lost my card number {num}"),
                      ("me han robado la tarjeta número {num}", "my card number {num} was stolen")],
        "pay_bill": [("quiero pagar una factura de {num} euros", "I want to pay a bill of {num} euros"),
                     ("por favor paga mi factura de teléfono de {num} euros", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("cuántos dólares recibo por {num} euros", "how many dollars do I get for {num} euros"),
                          ("cuál es el tipo de cambio para {num} dólares", "what is the exchange rate for {num} dollars")],
        "open_account": [("quiero abrir una cuenta para {name}", "I would like to open an account for {name}"),
                         ("abre una nueva cuenta de ahorros con {num} euros", "open a new savings account with {num} euros")],
    },
    "it": {
        "balance": [("qual è il saldo del conto numero {num}", "what is the balance of account number {num}"),
                    ("quanti soldi ci sono sul conto numero {num}", "how much money is in account number {num}")],
        "transfer": [("trasferisci {num} euro a {name}", "transfer {num} euros to {name}"),
                     ("per favore invia {num} euro a {name}", "please send {num} euros to {name}")],
        "lost_card": [("ho perso la mia carta numero {num}", "I lost my card number {num}"),
                      ("mi hanno rubato la carta numero {num}", "my card number {num} was stolen")],
        "pay_bill": [("voglio pagare una bolletta di {num} euro", "I want to pay a bill of {num} euros"),
                     ("per favore paga la mia bolletta del telefono di {num} euro", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("quanti dollari ricevo per {num} euro", "how many dollars do I get for {num} euros"),
                          ("qual è il tasso di cambio per {num} dollari", "what is the exchange rate for {num} dollars")],
        "open_account": [("vorrei aprire un conto per {name}", "I would like to open an account for {name}"),
                         ("apri un nuovo conto di risparmio con {num} euro", "open a new savings account with {num} euros")],
    },
    "pt": {
        "balance": [("qual é o saldo da conta número {num}", "what is the balance of account number {num}"),
                    ("quanto dinheiro há na conta número {num}", "how much money is in account number {num}")],
        "transfer": [("transfere {num} euros para {name}", "transfer {num} euros to {name}"),
                     ("por favor envia {num} euros para {name}", "please send {num} euros to {name}")],
        "lost_card": [("perdi o meu cartão número {num}", "I lost my card number {num}"),
                      ("o meu cartão número {num} foi roubado", "my card number {num} was stolen")],
        "pay_bill": [("quero pagar uma fatura de {num} euros", "I want to pay a bill of {num} euros"),
                     ("por favor paga a minha fatura de telefone de {num} euros", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("quantos dólares recebo por {num} euros", "how many dollars do I get for {num} euros"),
                          ("qual é a taxa de câmbio para {num} dólares", "what is the exchange rate for {num} dollars")],
        "open_account": [("gostaria de abrir uma conta para {name}", "I would like to open an account for {name}"),
                         ("abre uma nova conta poupança com {num} euros", "open a new savings account with {num} euros")],
    },
    "pl": {
        "balance": [("jakie jest saldo konta numer {num}", "what is the balance of account number {num}"),
                    ("ile pieniędzy jest na koncie numer {num}", "how much money is in account number {num}")],
        "transfer": [("przelej {num} euro dla {name_gen}", "transfer {num} euros to {name}"),
                     ("proszę wyślij {num} euro do {name_gen}", "please send {num} euros to {name}")],
        "lost_card": [("zgubiłem kartę numer {num}", "I lost my card number {num}"),
                      ("moja karta numer {num} została skradziona", "my card number {num} was stolen")],
        "pay_bill": [("chcę zapłacić rachunek na kwotę {num} euro", "I want to pay a bill of {num} euros"),
                     ("proszę zapłać mój rachunek za telefon na kwotę {num} euro",
                      "please pay my phone bill of {num} euros")],
        "exchange_rate": [("ile dolarów dostanę za {num} euro", "how many dollars do I get for {num} euros"),
                          ("po jakim kursie wymienię {num} euro", "at what exchange rate can I change {num} euros")],
        "open_account": [("chciałbym otworzyć konto dla {name_gen}", "I would like to open an account for {name}"),
                         ("otwórz nowe konto oszczędnościowe i wpłać {num} euro",
                          "open a new savings account and deposit {num} euros")],
    },
    "ru": {
        "balance": [("какой баланс на счёте номер {num}", "what is the balance of account number {num}"),
                    ("сколько денег на счёте номер {num}", "how much money is in account number {num}")],
        "transfer": [("переведи {num} евро {name_dat}", "transfer {num} euros to {name}"),
                     ("пожалуйста отправь {num} евро {name_dat}", "please send {num} euros to {name}")],
        "lost_card": [("я потерял карту номер {num}", "I lost my card number {num}"),
                      ("мою карту номер {num} украли", "my card number {num} was stolen")],
        "pay_bill": [("я хочу оплатить счёт на {num} евро", "I want to pay a bill of {num} euros"),
                     ("пожалуйста оплати мой счёт за телефон на {num} евро", "please pay my phone bill of {num} euros")],
        "exchange_rate": [("сколько долларов я получу за {num} евро", "how many dollars do I get for {num} euros"),
                          ("по какому курсу я обменяю {num} евро", "at what exchange rate can I change {num} euros")],
        "open_account": [("я хочу открыть счёт для {name_gen}", "I would like to open an account for {name}"),
                         ("открой новый сберегательный счёт и положи на него {num} евро",
                          "open a new savings account and put {num} euros on it")],
    },
}

INTENT_LANGS = tuple(TEMPLATES)


def check_templates() -> None:
    """Every language has every intent, with the same number of templates; raises ValueError if not."""
    for lang, table in TEMPLATES.items():
        if tuple(table) != INTENTS:
            raise ValueError(f"templates for '{lang}': intents {tuple(table)}, expected {INTENTS}")
        for intent, pairs in table.items():
            if len(pairs) != 2:
                raise ValueError(f"templates for '{lang}/{intent}': {len(pairs)} templates, expected 2")
        if lang not in NAMES or len(NAMES[lang]) != len(EN_NAMES):
            raise ValueError(f"templates for '{lang}': names missing or not {len(EN_NAMES)} of them")
