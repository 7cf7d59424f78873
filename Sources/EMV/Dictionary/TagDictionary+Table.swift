extension TagDictionary {
    /// tag | name | format | length range (bytes) | source | templates
    static let table = """
    42   | Issuer Identification Number (IIN)                  | n        | 3-3     | card     | BF0C 73
    4F   | Application Identifier (AID) – card                 | b        | 5-16    | card     | 61
    50   | Application Label                                   | ans      | 1-16    | card     | 61 A5
    56   | Track 1 Data                                        | ans      | 0-76    | card     | 70 77
    57   | Track 2 Equivalent Data                             | b        | 0-19    | card     | 70 77
    5A   | Application Primary Account Number (PAN)            | cn       | 0-10    | card     | 70 77
    5F20 | Cardholder Name                                     | ans      | 2-26    | card     | 70 77
    5F24 | Application Expiration Date                         | n        | 3-3     | card     | 70 77
    5F25 | Application Effective Date                          | n        | 3-3     | card     | 70 77
    5F28 | Issuer Country Code                                 | n        | 2-2     | card     | 70 77
    5F2A | Transaction Currency Code                           | n        | 2-2     | terminal |
    5F2D | Language Preference                                 | an       | 2-8     | card     | A5
    5F30 | Service Code                                        | n        | 2-2     | card     | 70 77
    5F34 | Application PAN Sequence Number                     | n        | 1-1     | card     | 70 77
    5F36 | Transaction Currency Exponent                       | n        | 1-1     | terminal |
    5F50 | Issuer URL                                          | ans      | 0-255   | card     | BF0C
    5F53 | International Bank Account Number (IBAN)            | b        | 0-34    | card     | BF0C
    5F54 | Bank Identifier Code (BIC)                          | b        | 8-11    | card     | BF0C
    61   | Application Template                                | template | 0-252   | card     | 70 BF0C
    6F   | File Control Information (FCI) Template             | template | 0-252   | card     |
    70   | READ RECORD Response Message Template               | template | 0-252   | card     |
    71   | Issuer Script Template 1                            | template | 0-255   | issuer   |
    72   | Issuer Script Template 2                            | template | 0-255   | issuer   |
    73   | Directory Discretionary Template                    | template | 0-252   | card     | 61
    77   | Response Message Template Format 2                  | template | 0-255   | card     |
    80   | Response Message Template Format 1                  | b        | 0-255   | card     |
    81   | Amount, Authorised (Binary)                         | b        | 4-4     | terminal |
    82   | Application Interchange Profile (AIP)               | b        | 2-2     | card     | 77 80
    83   | Command Template                                    | b        | 0-255   | terminal |
    84   | Dedicated File (DF) Name                            | b        | 5-16    | card     | 6F
    86   | Issuer Script Command                               | b        | 0-261   | issuer   | 71 72
    87   | Application Priority Indicator                      | b        | 1-1     | card     | 61 A5
    88   | Short File Identifier (SFI)                         | b        | 1-1     | card     | A5
    89   | Authorisation Code                                  | ans      | 6-6     | issuer   |
    8A   | Authorisation Response Code                         | an       | 2-2     | issuer   |
    8C   | Card Risk Management Data Object List 1 (CDOL1)     | b        | 0-252   | card     | 70 77
    8D   | Card Risk Management Data Object List 2 (CDOL2)     | b        | 0-252   | card     | 70 77
    8E   | Cardholder Verification Method (CVM) List           | b        | 10-252  | card     | 70 77
    8F   | Certification Authority Public Key Index            | b        | 1-1     | card     | 70 77
    90   | Issuer Public Key Certificate                       | b        | 0-255   | card     | 70 77
    91   | Issuer Authentication Data                          | b        | 8-16    | issuer   |
    92   | Issuer Public Key Remainder                         | b        | 0-255   | card     | 70 77
    93   | Signed Static Application Data                      | b        | 0-255   | card     | 70 77
    94   | Application File Locator (AFL)                      | b        | 0-252   | card     | 77 80
    95   | Terminal Verification Results (TVR)                 | b        | 5-5     | terminal |
    97   | Transaction Certificate Data Object List (TDOL)     | b        | 0-252   | card     | 70 77
    98   | Transaction Certificate (TC) Hash Value             | b        | 20-20   | terminal |
    99   | Transaction PIN Data                                | b        | 0-255   | terminal |
    9A   | Transaction Date                                    | n        | 3-3     | terminal |
    9B   | Transaction Status Information (TSI)                | b        | 2-2     | terminal |
    9C   | Transaction Type                                    | n        | 1-1     | terminal |
    9D   | Directory Definition File (DDF) Name                | b        | 5-16    | card     | 61
    9F01 | Acquirer Identifier                                 | n        | 6-6     | terminal |
    9F02 | Amount, Authorised (Numeric)                        | n        | 6-6     | terminal |
    9F03 | Amount, Other (Numeric)                             | n        | 6-6     | terminal |
    9F05 | Application Discretionary Data                      | b        | 1-32    | card     | 70 77
    9F06 | Application Identifier (AID) – terminal             | b        | 5-16    | terminal |
    9F07 | Application Usage Control                           | b        | 2-2     | card     | 70 77
    9F08 | Application Version Number – card                   | b        | 2-2     | card     | 70 77
    9F09 | Application Version Number – terminal               | b        | 2-2     | terminal |
    9F0B | Cardholder Name Extended                            | ans      | 27-45   | card     | 70 77
    9F0D | Issuer Action Code – Default                        | b        | 5-5     | card     | 70 77
    9F0E | Issuer Action Code – Denial                         | b        | 5-5     | card     | 70 77
    9F0F | Issuer Action Code – Online                         | b        | 5-5     | card     | 70 77
    9F10 | Issuer Application Data (IAD)                       | b        | 0-32    | card     | 77 80
    9F11 | Issuer Code Table Index                             | n        | 1-1     | card     | A5
    9F12 | Application Preferred Name                          | ans      | 1-16    | card     | 61 A5
    9F13 | Last Online ATC Register                            | b        | 2-2     | card     |
    9F14 | Lower Consecutive Offline Limit                     | b        | 1-1     | card     | 70 77
    9F15 | Merchant Category Code                              | n        | 2-2     | terminal |
    9F16 | Merchant Identifier                                 | ans      | 15-15   | terminal |
    9F17 | PIN Try Counter                                     | b        | 1-1     | card     |
    9F18 | Issuer Script Identifier                            | b        | 4-4     | issuer   | 71 72
    9F19 | Token Requestor ID                                  | n        | 6-6     | card     | 70 77
    9F1A | Terminal Country Code                               | n        | 2-2     | terminal |
    9F1B | Terminal Floor Limit                                | b        | 4-4     | terminal |
    9F1C | Terminal Identification                             | an       | 8-8     | terminal |
    9F1D | Terminal Risk Management Data                       | b        | 1-8     | terminal |
    9F1E | Interface Device (IFD) Serial Number                | an       | 8-8     | terminal |
    9F1F | Track 1 Discretionary Data                          | ans      | 0-255   | card     | 70 77
    9F20 | Track 2 Discretionary Data                          | cn       | 0-255   | card     | 70 77
    9F21 | Transaction Time                                    | n        | 3-3     | terminal |
    9F22 | Certification Authority Public Key Index – terminal | b        | 1-1     | terminal |
    9F23 | Upper Consecutive Offline Limit                     | b        | 1-1     | card     | 70 77
    9F24 | Payment Account Reference (PAR)                     | an       | 29-29   | card     | 70 77
    9F25 | Last 4 Digits of PAN                                | n        | 2-2     | card     | 70 77
    9F26 | Application Cryptogram                              | b        | 8-8     | card     | 77 80
    9F27 | Cryptogram Information Data (CID)                   | b        | 1-1     | card     | 77 80
    9F2D | ICC PIN Encipherment Public Key Certificate         | b        | 0-255   | card     | 70 77
    9F2E | ICC PIN Encipherment Public Key Exponent            | b        | 1-3     | card     | 70 77
    9F2F | ICC PIN Encipherment Public Key Remainder           | b        | 0-255   | card     | 70 77
    9F32 | Issuer Public Key Exponent                          | b        | 1-3     | card     | 70 77
    9F33 | Terminal Capabilities                               | b        | 3-3     | terminal |
    9F34 | Cardholder Verification Method (CVM) Results        | b        | 3-3     | terminal |
    9F35 | Terminal Type                                       | n        | 1-1     | terminal |
    9F36 | Application Transaction Counter (ATC)               | b        | 2-2     | card     | 77 80
    9F37 | Unpredictable Number                                | b        | 4-4     | terminal |
    9F38 | Processing Options Data Object List (PDOL)          | b        | 0-252   | card     | A5
    9F39 | Point-of-Service (POS) Entry Mode                   | n        | 1-1     | terminal |
    9F3A | Amount, Reference Currency                          | b        | 4-4     | terminal |
    9F3B | Application Reference Currency                      | n        | 2-8     | card     | 70 77
    9F3C | Transaction Reference Currency Code                 | n        | 2-2     | terminal |
    9F3D | Transaction Reference Currency Exponent             | n        | 1-1     | terminal |
    9F40 | Additional Terminal Capabilities                    | b        | 5-5     | terminal |
    9F41 | Transaction Sequence Counter                        | n        | 2-4     | terminal |
    9F42 | Application Currency Code                           | n        | 2-2     | card     | 70 77
    9F43 | Application Reference Currency Exponent             | n        | 1-4     | card     | 70 77
    9F44 | Application Currency Exponent                       | n        | 1-1     | card     | 70 77
    9F45 | Data Authentication Code                            | b        | 2-2     | card     |
    9F46 | ICC Public Key Certificate                          | b        | 0-255   | card     | 70 77
    9F47 | ICC Public Key Exponent                             | b        | 1-3     | card     | 70 77
    9F48 | ICC Public Key Remainder                            | b        | 0-255   | card     | 70 77
    9F49 | Dynamic Data Authentication Data Object List (DDOL) | b        | 0-252   | card     | 70 77
    9F4A | Static Data Authentication Tag List                 | b        | 0-252   | card     | 70 77
    9F4B | Signed Dynamic Application Data                     | b        | 0-255   | card     | 77 80
    9F4C | ICC Dynamic Number                                  | b        | 2-8     | card     |
    9F4D | Log Entry                                           | b        | 2-2     | card     | BF0C
    9F4E | Merchant Name and Location                          | ans      | 0-255   | terminal |
    9F4F | Log Format                                          | b        | 0-255   | card     |
    9F51 | Application Currency Code (PBOC)                    | n        | 2-2     | card     | 70 77
    9F5D | Available Offline Spending Amount                   | n        | 6-6     | card     | 77
    9F63 | Card Product Identification Information (PBOC)      | b        | 16-16   | card     | 70 77
    9F66 | Terminal Transaction Qualifiers (TTQ)               | b        | 4-4     | terminal |
    9F6B | Track 2 Data (contactless)                          | b        | 0-19    | card     | 70 77
    9F6C | Card Transaction Qualifiers (CTQ)                   | b        | 2-2     | card     | 77
    9F6E | Form Factor Indicator / Third Party Data            | b        | 4-32    | card     | 70 77
    9F74 | Electronic Cash Issuer Authorisation Code           | a        | 6-6     | card     | 77
    9F79 | Electronic Cash Balance                             | n        | 6-6     | card     |
    9F7C | Customer Exclusive Data                             | b        | 0-32    | card     | 77
    A5   | FCI Proprietary Template                            | template | 0-252   | card     | 6F
    BF0C | FCI Issuer Discretionary Data                       | template | 0-222   | card     | A5
    DF60 | CAPP Transaction Indicator (PBOC)                   | b        | 1-1     | terminal |
    DF61 | Partial Online Indicator (PBOC)                     | b        | 1-1     | card     | 77
    DF69 | SM Algorithm Supported Indicator (PBOC)             | b        | 1-1     | card     | 70 77
    DF4D | Load Log Entry (PBOC)                               | b        | 2-2     | card     | BF0C
    DF4F | Load Log Format (PBOC)                              | b        | 0-255   | card     |
    """
}
